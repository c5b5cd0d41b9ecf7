// Job board: GET /jobs with the filters status, solver, submitter (kept in the page's query string).
"use strict";

const { h } = VT;

VT.page("Jobs", async (main) => {
  const STATUSES = ["", ...(await VT.api("/enums")).job_status];
  const filters = { status: VT.param("status") || "", solver: VT.param("solver") || "", submitter: VT.param("submitter") || "" };
  const form = h(
    "form",
    { class: "filters", method: "get", action: "index.html", dataset: { testid: "filters" } },
    h("label", {}, "status", h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s || "any")))),
    h("label", {}, "solver", h("input", { name: "solver", value: filters.solver, placeholder: "0x… address", spellcheck: "false" })),
    h("label", {}, "submitter", h("input", { name: "submitter", value: filters.submitter, placeholder: "0x… address", spellcheck: "false" })),
    h("button", { type: "submit", class: "primary" }, "Filter"),
    h("a", { href: "index.html" }, "clear"),
  );
  const list = h("div", { id: "jobs" });
  const more = h("div", { class: "more" });
  main.replaceChildren(h("h1", {}, "Job board"), VT.card(null, form), VT.card(null, list, more));

  const cols = [
    ["job", (j) => VT.link.job(j.job_id)],
    ["status", (j) => VT.badge(j.status)],
    ["model", (j) => `${j.model_kind} · ${j.mode}`],
    ["steps / interval", (j) => `${j.order.totalSteps} / ${j.order.checkpointInterval}`, "num"],
    ["leaves", (j) => String(j.order.totalSteps / j.order.checkpointInterval), "num"],
    ["max price", (j) => VT.token(j.order.maxPrice), "num"],
    ["solver", (j) => (j.solver ? VT.link.staker(j.solver) : h("span", { class: "muted" }, "–"))],
    ["submitter", (j) => VT.link.staker(j.order.submitter)],
    ["bids", (j) => String(j.bids), "num"],
    ["posted", (j) => VT.time(Date.parse(j.created_at) / 1000)],
  ];
  const rows = [];
  async function load(cursor) {
    const page = await VT.api("/jobs", { ...filters, cursor, limit: 50 });
    rows.push(...page.items);
    list.replaceChildren(VT.table(cols, rows, { testid: "jobs-table", empty: "no job matches these filters" }));
    more.replaceChildren(
      page.next_cursor === null ? h("span", { class: "muted" }, `${rows.length} job${rows.length === 1 ? "" : "s"}`) : h("button", { onclick: () => load(page.next_cursor) }, "more…"),
    );
  }
  await load(null);
});
