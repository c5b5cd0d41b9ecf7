// Every account that staked: GET /stakers.
"use strict";

const { h } = VT;

VT.page("Stakers", async (main) => {
  const list = h("div", {});
  const more = h("div", { class: "more" });
  main.replaceChildren(h("h1", {}, "Stakers"), VT.card(null, list, more));
  const cols = [
    ["account", (p) => VT.link.staker(p.address, p.address)],
    ["role", (p) => (p.verifier ? "verifier" : "")],
    ["free", (p) => VT.token(p.free), "num"],
    ["locked", (p) => VT.token(p.locked), "num"],
    ["unbonding", (p) => VT.token(p.unbonding), "num"],
    ["claimable", (p) => VT.token(p.claimable), "num"],
    ["slashed", (p) => (p.slashes ? [VT.badge("slashed"), " ", VT.token(p.slashed_total)] : h("span", { class: "muted" }, "never")), "num"],
  ];
  const rows = [];
  async function load(after) {
    const page = await VT.api("/stakers", { after, limit: 100 });
    rows.push(...page.items);
    list.replaceChildren(VT.table(cols, rows, { testid: "stakers-table", empty: "no staker indexed yet" }));
    more.replaceChildren(page.next_cursor === null ? h("span", { class: "muted" }, `${rows.length} accounts`) : h("button", { onclick: () => load(page.next_cursor) }, "more…"));
  }
  await load(null);
});
