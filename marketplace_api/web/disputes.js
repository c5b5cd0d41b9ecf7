// Every dispute: GET /disputes (optionally only open or resolved ones).
"use strict";

const { h } = VT;

VT.page("Disputes", async (main) => {
  const status = VT.param("status") || "";
  const form = h(
    "form",
    { class: "filters", method: "get", action: "disputes.html" },
    h("label", {}, "status", h("select", { name: "status" }, ["", "open", "resolved"].map((s) => h("option", { value: s, selected: s === status }, s || "any")))),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  const list = h("div", {});
  const more = h("div", { class: "more" });
  main.replaceChildren(h("h1", {}, "Disputes"), VT.card(null, form), VT.card(null, list, more));
  const cols = [
    ["dispute", (d) => VT.link.dispute(d.dispute_id)],
    ["job", (d) => VT.link.job(d.job_id)],
    ["phase", (d) => VT.badge(d.phase)],
    ["outcome", (d) => VT.badge(d.outcome)],
    ["solver", (d) => VT.link.staker(d.solver)],
    ["challenger", (d) => VT.link.staker(d.challenger)],
    ["N", (d) => String(d.num_leaves), "num"],
    ["game at", (d) => `[${d.lo}, ${d.hi})`, "num"],
    ["clocks (solver / challenger)", (d) => `${VT.seconds(d.solver_clock)} / ${VT.seconds(d.challenger_clock)}`, "num"],
    ["bond", (d) => VT.token(d.bond), "num"],
  ];
  const rows = [];
  async function load(cursor) {
    const page = await VT.api("/disputes", { status, cursor, limit: 50 });
    rows.push(...page.items);
    list.replaceChildren(VT.table(cols, rows, { testid: "disputes-table", empty: "no disputes" }));
    more.replaceChildren(page.next_cursor === null ? h("span", { class: "muted" }, `${rows.length} dispute${rows.length === 1 ? "" : "s"}`) : h("button", { onclick: () => load(page.next_cursor) }, "more…"));
  }
  await load(null);
});
