// One staker: GET /stakers/{address} (position, locks, slashes, history, solver record) and its jobs.
"use strict";

const { h } = VT;

function context(e) {
  return [e.job_id ? ["job ", VT.link.job(e.job_id)] : null, e.dispute_id !== null ? [" dispute ", VT.link.dispute(e.dispute_id)] : null];
}

VT.page("Stakers", async (main) => {
  const address = VT.param("address");
  if (!address) throw new Error("no address in the address bar (staker.html?address=0x…)");
  const [st, jobs] = await Promise.all([
    VT.api(`/stakers/${encodeURIComponent(address)}`),
    VT.api("/jobs", { solver: address, limit: 50 }),
  ]);
  document.title = `Staker ${VT.short(st.address)} · veritrain auditor`;
  const slashed = st.slashes.length > 0;

  const position = VT.kv([
    ["free", VT.token(st.free)],
    ["locked", VT.token(st.locked)],
    ["unbonding", st.unbonding !== "0" ? `${VT.token(st.unbonding)} (released ${VT.time(st.release_at)})` : VT.token(0)],
    ["claimable", VT.token(st.claimable)],
    ["verifier pool", st.verifier ? "yes" : "no"],
    ["slashed in total", h("strong", { dataset: { testid: "slashed-total" } }, VT.token(st.slashed_total))],
    ["as of block", st.block_number === null ? "never staked" : String(st.block_number)],
  ]);
  const r = st.record;
  const record = VT.kv([
    ["jobs matched", String(r.jobs_matched)],
    ["finalized", String(r.jobs_finalized)],
    ["slashed", String(r.jobs_slashed)],
    ["expired", String(r.jobs_expired)],
  ]);

  const locks = VT.table(
    [
      ["for", (l) => (l.dispute_id !== null ? ["dispute ", VT.link.dispute(l.dispute_id)] : l.job_id ? ["job stake ", VT.link.job(l.job_id)] : VT.hash(l.key))],
      ["amount", (l) => VT.token(l.amount), "num"],
      ["locked in", (l) => [VT.tx(l.locked_in_tx), " block ", String(l.block_number)]],
    ],
    st.locks,
    { testid: "locks-table", empty: "nothing locked" },
  );

  const slashes = VT.table(
    [
      ["block", (e) => String(e.block_number), "num"],
      ["time", (e) => VT.time(e.block_time)],
      ["amount", (e) => h("strong", {}, VT.token(e.args.amount)), "num"],
      ["burned", (e) => VT.token(e.args.burned), "num"],
      ["about", context],
      ["tx", (e) => VT.tx(e.tx_hash)],
    ],
    st.slashes,
    { testid: "slashes-table", empty: "never slashed" },
  );

  const history = VT.table(
    [
      ["block", (e) => String(e.block_number), "num"],
      ["time", (e) => VT.time(e.block_time)],
      ["event", (e) => e.name],
      ["amount", (e) => (e.args.amount === undefined ? "" : VT.token(e.args.amount)), "num"],
      ["about", context],
      ["tx", (e) => VT.tx(e.tx_hash)],
    ],
    [...st.history].reverse(),
    { testid: "history-table", empty: "no StakeManager events" },
  );

  const solved = VT.table(
    [
      ["job", (j) => VT.link.job(j.job_id)],
      ["status", (j) => VT.badge(j.status)],
      ["model", (j) => j.model_kind],
      ["max price", (j) => VT.token(j.order.maxPrice), "num"],
    ],
    jobs.items,
    { testid: "solver-jobs-table", empty: "no job matched to this account" },
  );

  main.replaceChildren(
    h("h1", {}, "Staker ", VT.mono(st.address), slashed ? VT.badge("slashed") : VT.badge("never slashed", "ok")),
    slashed ? h("div", { class: "banner-slashed", dataset: { testid: "slashed-banner" } }, `Slashed ${st.slashes.length} time${st.slashes.length === 1 ? "" : "s"}: ${VT.token(st.slashed_total)} in total`) : null,
    h("div", { class: "grid row-gap" }, VT.card("Stake", position), VT.card("Record as a solver", record)),
    VT.card("Locks", locks),
    VT.card("Slashes", slashes),
    VT.card("Jobs as solver", solved),
    VT.card("History (newest first)", history),
  );
});
