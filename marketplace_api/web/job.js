// One job: GET /jobs/{id} (order, spec, ranked bids, chain state, trajectory, audit, disputes, events) and
// GET /jobs/{id}/metrics (the metrics each committed checkpoint records: the loss curve).
"use strict";

const { h } = VT;
const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const SERIES = [
  ["train_loss", "training loss (segment mean)", "train"],
  ["heldout_loss", "held-out loss", "heldout"],
];

/** The loss curve: one point per checkpoint for each series that has values; x = optimizer step. */
function lossChart(metrics) {
  const pts = metrics.points || [];
  if (!pts.length)
    return h("p", { class: "empty", dataset: { testid: "loss-chart-empty" } }, "no checkpoint metrics (the spec has no evaluation, or the checkpoints are not mirrored here)");
  const W = 640, H = 260, L = 56, R = 16, T = 14, B = 40;
  const vals = [];
  for (const [key] of SERIES) for (const p of pts) if (p[key] !== null && p[key] !== undefined) vals.push(p[key]);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const pad = (hi - lo) * 0.08;
  lo -= pad; hi += pad;
  const maxStep = Math.max(...pts.map((p) => p.step));
  const x = (step) => L + (step / maxStep) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const svg = s("svg", { class: "loss-chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `loss per checkpoint over ${maxStep} steps`, "data-testid": "loss-chart" });
  const axes = s("g", { class: "axes" },
    s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }), s("line", { x1: L, y1: T, x2: L, y2: H - B }));
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    axes.append(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(3)));
    axes.append(s("line", { class: "grid", x1: L, y1: y(v), x2: W - R, y2: y(v) }));
  }
  for (const p of pts) axes.append(s("text", { x: x(p.step), y: H - B + 16, "text-anchor": "middle" }, String(p.step)));
  axes.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, "optimizer step"));
  svg.append(axes);
  const legend = [];
  for (const [key, label, cls] of SERIES) {
    const have = pts.filter((p) => p[key] !== null && p[key] !== undefined);
    if (!have.length) continue;
    svg.append(s("polyline", { class: `series ${cls}`, points: have.map((p) => `${x(p.step)},${y(p[key])}`).join(" ") }));
    const dots = s("g", { class: `points ${cls}` });
    for (const p of have)
      dots.append(s("circle", { cx: x(p.step), cy: y(p[key]), r: 4, "data-testid": `loss-point-${cls}`, "data-step": p.step,
        "data-value": p[key] }, s("title", {}, `${label} at step ${p.step}: ${p[key].toPrecision(5)} (leaf ${p.leaf}, ${p.state_root})`)));
    svg.append(dots);
    legend.push(h("span", { class: `legend ${cls}` }, label));
  }
  const acc = pts.filter((p) => p.heldout_accuracy !== null && p.heldout_accuracy !== undefined);
  const table = VT.table(
    [
      ["leaf", (p) => String(p.leaf), "num"],
      ["step", (p) => String(p.step), "num"],
      ["train loss", (p) => (p.train_loss === null ? "–" : p.train_loss.toFixed(4)), "num"],
      ["held-out loss", (p) => (p.heldout_loss === null ? "–" : p.heldout_loss.toFixed(4)), "num"],
      ...(acc.length ? [["held-out accuracy", (p) => (p.heldout_accuracy === null ? "–" : `${(100 * p.heldout_accuracy).toFixed(1)} %`), "num"]] : []),
      ["learning rate", (p) => (p.lr === null ? "–" : p.lr.toPrecision(4)), "num"],
      ["state root", (p) => VT.hash(p.state_root)],
    ],
    pts,
    { testid: "metrics-table", empty: "no metrics" },
  );
  return h("div", {}, svg, h("p", { class: "muted" }, legend, " · each point is committed in its checkpoint's manifest (leaf of the trajectory root)"), table);
}

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
    ...fineTuning(spec),
  ]);
}

/** The version-2 training options a spec sets (absent ones are at their defaults). */
function fineTuning(spec) {
  const rows = [];
  const init = spec.init;
  if (init && init.kind === "weights")
    rows.push(["initial weights", [VT.hash(init.state_root), init.fresh && init.fresh.length ? ` (fresh: ${init.fresh.join(", ")})` : ""]]);
  const sch = spec.schedule;
  if (sch)
    rows.push(["lr schedule", `warm-up ${sch.warmup_steps || 0} steps, ${sch.decay || "constant"}${sch.decay && sch.decay !== "constant" ? ` to ${sch.final_lr_fraction || 0} × lr` : ""}`]);
  if (spec.clip_grad_norm) rows.push(["gradient clipping", `global norm ≤ ${spec.clip_grad_norm}`]);
  if (spec.grad_accumulation) rows.push(["accumulation", `${spec.grad_accumulation} micro-batches per step`]);
  if (spec.freeze && spec.freeze.length) rows.push(["frozen", spec.freeze.join(", ")]);
  if (spec.lora) rows.push(["LoRA", `rank ${spec.lora.rank}, alpha ${spec.lora.alpha} on ${spec.lora.targets.join(", ")}`]);
  if (spec.evaluation) rows.push(["evaluation", `held-out, every checkpoint${spec.evaluation.max_examples ? ` (first ${spec.evaluation.max_examples} examples)` : ""}`]);
  return rows;
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
  const [job, metrics] = await Promise.all([
    VT.api(`/jobs/${encodeURIComponent(id)}`),
    VT.api(`/jobs/${encodeURIComponent(id)}/metrics`),
  ]);
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
    VT.card("Loss curve", lossChart(metrics)),
    VT.card("Audit", audit),
    VT.card("Disputes", disputes),
    VT.card("Bids", bids),
    VT.card("Chain events", events),
  );
});
