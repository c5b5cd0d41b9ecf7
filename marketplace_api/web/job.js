// One job: GET /jobs/{id} (order, spec, ranked bids, chain state, trajectory, audit, disputes, events).
"use strict";

const { h } = VT;

function specSummary(spec) {
  if (!spec) return h("p", { class: "empty" }, "spec not available from this API");
  const m = spec.model || {};
  const modelDesc = Object.entries(m)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(",")}]` : v}`)
    .join(" ");
  const opt = spec.optimizer || {};
  const mode = spec.mode || {};
  return VT.kv([
    ["model", `${m.kind} ${modelDesc}`],
    ["optimizer", Object.entries(opt).map(([k, v]) => (k === "kind" ? v : `${k}=${v}`)).join(" ")],
    ["batch size", String(spec.batch_size)],
    ["steps", `${spec.total_steps} (checkpoint every ${spec.checkpoint_interval})`],
    ["seed", String(spec.seed)],
    ["mode", Object.values(mode).join(" · ")],
    ["dataset", [spec.dataset && spec.dataset.format, " ", VT.hash(spec.dataset && spec.dataset.digest)]],
    ["C_init", VT.hash(spec.init_state_root)],
  ]);
}

function outcome(job) {
  const ev = (name) => job.events.filter((e) => e.name === name).pop();
  const fin = ev("JobFinalized");
  const sl = ev("JobSlashed");
  const ex = ev("JobExpired");
  if (fin)
    return VT.kv([
      ["result", VT.badge("finalized")],
      ["solver paid", VT.token(fin.args.solverPaid)],
      ["audit fees", VT.token(fin.args.feesPaid)],
      ["refunded", VT.token(fin.args.refunded)],
      ["tx", [VT.tx(fin.tx_hash), " block ", String(fin.block_number), " · ", VT.time(fin.block_time)]],
    ]);
  if (sl)
    return VT.kv([
      ["result", VT.badge("slashed")],
      ["solver", VT.link.staker(job.chain && job.chain.solver)],
      ["slashed", h("strong", {}, VT.token(sl.args.slashed))],
      ["challenger", VT.link.staker(sl.args.challenger)],
      ["refunded to submitter", VT.token(sl.args.refunded)],
      ["tx", [VT.tx(sl.tx_hash), " block ", String(sl.block_number), " · ", VT.time(sl.block_time)]],
    ]);
  if (ex)
    return VT.kv([
      ["result", VT.badge("expired")],
      ["slashed", VT.token(ex.args.slashed)],
      ["refunded", VT.token(ex.args.refunded)],
      ["tx", VT.tx(ex.tx_hash)],
    ]);
  return h("p", { class: "muted" }, `not settled yet (${job.status})`);
}

VT.page("Jobs", async (main) => {
  const id = VT.param("id");
  if (!id) throw new Error("no job id in the address (job.html?id=0x…)");
  const job = await VT.api(`/jobs/${encodeURIComponent(id)}`);
  document.title = `Job ${VT.short(job.job_id, 8)} · veritrain auditor`;
  const chain = job.chain;
  const order = job.order;

  const header = h("h1", {}, "Job ", VT.mono(VT.short(job.job_id, 10), job.job_id), VT.badge(job.status));

  const parties = VT.kv([
    ["job id", VT.mono(job.job_id)],
    ["submitter", VT.link.staker((chain && chain.submitter) || (order && order.submitter), (chain && chain.submitter) || (order && order.submitter))],
    ["solver", chain ? VT.link.staker(chain.solver, chain.solver) : h("span", { class: "muted" }, "not matched")],
    ["price", chain ? VT.token(chain.price) : order ? `max ${VT.token(order.maxPrice)}` : "–"],
    ["solver stake", chain ? VT.token(chain.stake) : "–"],
    ["commit deadline", VT.time(chain ? chain.deadline : order && order.deadline)],
    ["audit window ends", chain && chain.audit_end ? VT.time(chain.audit_end) : "–"],
  ]);

  const t = job.trajectory;
  const trajectory = t
    ? VT.kv([
        ["leaves (N)", h("strong", { dataset: { testid: "num-leaves" } }, String(t.num_leaves))],
        ["trajectory root", VT.mono(t.root)],
        ["final state root", VT.mono(t.final_state_root)],
        ["C_init", VT.mono(chain ? chain.init_state_root : order.initStateRoot)],
        ["commit tx", [VT.tx(t.committed_in_tx), " in block ", String(t.block_number)]],
        ["checkpoints", h("span", { class: "mono" }, t.uri)],
      ])
    : h("p", { class: "muted" }, "not committed yet");

  const a = job.audit;
  const audit = a
    ? [
        VT.kv([
          ["audit seed", a.seed ? VT.hash(a.seed) : "not drawn yet"],
          ["sampled segments", a.segments.length ? a.segments.join(", ") : "–"],
        ]),
        VT.table(
          [
            ["assigned verifier", (v) => VT.link.staker(v, v)],
            ["attested", (v) => (a.attested.includes(v) ? VT.badge("attested", "ok") : h("span", { class: "muted" }, "no"))],
          ],
          [...new Set([...a.verifiers, ...a.attested])],
          { testid: "audit-table", empty: "no verifier drawn" },
        ),
      ]
    : h("p", { class: "muted" }, "no audit yet");

  const bids = VT.table(
    [
      ["rank", (b) => (b.rank === null ? "–" : String(b.rank)), "num"],
      ["solver", (b) => VT.link.staker(b.bid.solver)],
      ["price", (b) => VT.token(b.bid.price), "num"],
      ["stake", (b) => VT.token(b.bid.stake), "num"],
      ["ETA", (b) => (b.eta_seconds === null ? "–" : VT.seconds(b.eta_seconds)), "num"],
      ["record (matched/finalized/slashed)", (b) => `${b.solver_record.jobs_matched}/${b.solver_record.jobs_finalized}/${b.solver_record.jobs_slashed}`, "num"],
      ["feasible now", (b) => (b.feasible ? "yes" : h("span", { class: "muted" }, `no: ${b.infeasible_reasons.join("; ")}`))],
    ],
    job.bids,
    { testid: "bids-table", empty: "no bids posted here" },
  );

  const disputes = VT.table(
    [
      ["dispute", (d) => VT.link.dispute(d.dispute_id)],
      ["challenger", (d) => VT.link.staker(d.challenger)],
      ["phase", (d) => VT.badge(d.phase)],
      ["outcome", (d) => VT.badge(d.outcome)],
      ["leaves [lo, hi)", (d) => `[${d.lo}, ${d.hi})`, "num"],
      ["bond", (d) => VT.token(d.bond), "num"],
    ],
    job.disputes,
    { testid: "disputes-table", empty: "no dispute" },
  );

  const events = VT.table(
    [
      ["block", (e) => String(e.block_number), "num"],
      ["time", (e) => VT.time(e.block_time)],
      ["event", (e) => (e.dispute_id !== null && e.contract === "DisputeGame" ? [e.name, " ", VT.link.dispute(e.dispute_id)] : e.name)],
      ["tx", (e) => VT.tx(e.tx_hash)],
    ],
    job.events,
    { testid: "events-table", empty: "no chain events" },
  );

  main.replaceChildren(
    header,
    h("div", { class: "grid row-gap" }, VT.card("Parties and money", parties), VT.card("Spec", specSummary(job.spec))),
    h("div", { class: "grid row-gap" }, VT.card("Trajectory", trajectory), VT.card("Outcome", h("div", { dataset: { testid: "outcome" } }, outcome(job)))),
    VT.card("Audit", audit),
    VT.card("Disputes", disputes),
    VT.card("Bids", bids),
    VT.card("Chain events", events),
  );
});
