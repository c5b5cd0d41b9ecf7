// Dispute explorer: GET /disputes/{id}. Draws the RFC 9162 tree over the job's N leaves (split at the largest
// power of two below n, as DESIGN §3) and the descent the challenger steered through it, one SideChosen per
// level, down to the opened leaf; then every move with its transaction, block, time and both chess clocks.
"use strict";

const { h } = VT;
const SVG = "http://www.w3.org/2000/svg";
const FULL_TREE_MAX = 64; // above this many leaves only the path and its siblings are drawn

function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function splitPoint(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The nodes to draw: [{lo, hi, depth, parent}] — every node for small trees, else path nodes + their children. */
function treeNodes(n, onPath) {
  const out = [];
  const visit = (lo, hi, depth, parent) => {
    const node = { lo, hi, depth, parent };
    out.push(node);
    if (hi - lo <= 1) return;
    if (n > FULL_TREE_MAX && !onPath(lo, hi)) return;
    const mid = lo + splitPoint(hi - lo);
    visit(lo, mid, depth + 1, node);
    visit(mid, hi, depth + 1, node);
  };
  visit(0, n, 0, null);
  return out;
}

function drawTree(d, steps, hashes) {
  const n = d.num_leaves;
  const path = new Set(["0:" + n, ...steps.map((m) => `${m.args.lo}:${m.args.hi}`)]);
  const onPath = (lo, hi) => path.has(`${lo}:${hi}`);
  const nodes = treeNodes(n, onPath);
  const depth = Math.max(...nodes.map((x) => x.depth));
  const width = Math.max(640, Math.min(1100, n * 28));
  const dy = depth > 12 ? 26 : 44;
  const top = 20;
  const height = top + depth * dy + 36;
  const x = (node) => 20 + ((node.lo + node.hi) / 2 / n) * (width - 40);
  const y = (node) => top + node.depth * dy;
  const svg = s("svg", { class: "tree", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `RFC 9162 tree of ${n} leaves with the dispute path` });
  const edges = s("g", {});
  const dots = s("g", {});
  svg.append(edges, dots);
  const leaf = d.leaf_index;
  for (const node of nodes) {
    const key = `${node.lo}:${node.hi}`;
    const on = path.has(key);
    if (node.parent) {
      const pathEdge = on && path.has(`${node.parent.lo}:${node.parent.hi}`);
      edges.append(s("line", { class: pathEdge ? "edge path" : "edge", x1: x(node.parent), y1: y(node.parent), x2: x(node), y2: y(node) }));
      if (pathEdge) {
        const step = steps.findIndex((m) => `${m.args.lo}:${m.args.hi}` === key) + 1;
        edges.append(s("text", { class: "step", x: (x(node.parent) + x(node)) / 2 + 5, y: (y(node.parent) + y(node)) / 2 - 2 }, String(step)));
      }
    }
    const isLeaf = node.hi - node.lo === 1;
    const disputed = isLeaf && (leaf === node.lo || (leaf === null && on && d.hi - d.lo === 1 && node.lo === d.lo));
    const cls = ["node", isLeaf ? "leaf" : null, on ? "path" : null, disputed ? "disputed" : null].filter(Boolean).join(" ");
    const title = `${isLeaf ? `leaf ${node.lo}` : `leaves [${node.lo}, ${node.hi})`}${hashes.get(key) ? "\n" + hashes.get(key) : ""}`;
    dots.append(s("circle", { class: cls, cx: x(node), cy: y(node), r: disputed ? 7 : isLeaf ? 4 : 5 }, s("title", {}, title)));
    if (isLeaf && (n <= 32 || on)) dots.append(s("text", { x: x(node), y: y(node) + 16, "text-anchor": "middle" }, String(node.lo)));
  }
  return svg;
}

const WHO = {
  DisputeOpened: "challenger",
  ChildrenRevealed: "solver",
  SideChosen: "challenger",
  LeafOpened: "solver",
  CommitteeSeedRearmed: "anyone",
  CommitteeDrawn: "anyone",
  DisputeResolved: "anyone",
};

function mover(d, m) {
  const role = WHO[m.name];
  if (m.args.arbiter) return VT.link.staker(m.args.arbiter, "arbiter");
  if (role === "solver") return VT.link.staker(d.solver, "solver");
  if (role === "challenger") return VT.link.staker(d.challenger, "challenger");
  return h("span", { class: "muted" }, role || "market");
}

function detail(d, m) {
  const a = m.args;
  switch (m.name) {
    case "JobDisputed":
      return ["job ", VT.link.job(d.job_id), " frozen: audit window paused"];
    case "DisputeOpened":
      return ["bond ", VT.token(a.bond), " on job ", VT.link.job(d.job_id)];
    case "ChildrenRevealed":
      return [`node [${a.lo}, ${a.hi}) → left `, VT.hash(a.left), " right ", VT.hash(a.right)];
    case "SideChosen":
      return [h("strong", {}, a.right ? "right" : "left"), ` → [${a.lo}, ${a.hi})`];
    case "LeafOpened":
      return [h("strong", {}, `leaf ${a.index}`), " post ", VT.hash(a.postStateRoot), " pre ", VT.hash(a.preStateRoot)];
    case "CommitteeSeedRearmed":
      return `seed block ${a.seedBlock}`;
    case "CommitteeDrawn":
      return ["committee ", (a.arbiters || []).map((x, i) => [i ? ", " : "", VT.link.staker(x)]), `; commits due ${VT.time(a.commitDeadline)}`];
    case "VoteCommitted":
      return ["commitment ", VT.hash(a.commitment)];
    case "VoteRevealed":
      return ["result ", VT.hash(a.result), a.result === d.post_state_root ? " = solver's leaf" : " ≠ solver's leaf"];
    case "DisputeResolved":
      return [VT.badge(String(a.outcome)), " loser ", VT.link.staker(a.loser), " slashed ", h("strong", {}, VT.token(a.slashed))];
    default:
      return h("span", { class: "mono" }, JSON.stringify(a));
  }
}

VT.page("Disputes", async (main) => {
  const id = VT.param("id");
  if (id === null || id === "") throw new Error("no dispute id in the address (dispute.html?id=N)");
  const d = await VT.api(`/disputes/${encodeURIComponent(id)}`);
  document.title = `Dispute #${d.dispute_id} · veritrain auditor`;
  const steps = d.moves.filter((m) => m.name === "SideChosen");
  const hashes = new Map();
  for (const m of d.moves) {
    if (m.name !== "ChildrenRevealed") continue;
    const mid = Number(m.args.lo) + splitPoint(m.args.hi - m.args.lo);
    hashes.set(`${m.args.lo}:${mid}`, m.args.left);
    hashes.set(`${mid}:${m.args.hi}`, m.args.right);
  }
  const resolved = d.moves.find((m) => m.name === "DisputeResolved");
  const turn =
    d.phase === "awaiting_reveal" || d.phase === "awaiting_leaf" ? "solver" : d.phase === "awaiting_choice" ? "challenger" : null;

  const avail = d.availability_leaf !== null && d.availability_leaf !== undefined;
  const summary = VT.kv([
    ["job", VT.link.job(d.job_id, d.job_id)],
    ["solver", [VT.link.staker(d.solver, d.solver), resolved && resolved.args.loser === d.solver ? [" ", VT.badge("slashed")] : null]],
    ["challenger", [VT.link.staker(d.challenger, d.challenger), resolved && resolved.args.loser === d.challenger ? [" ", VT.badge("slashed")] : null]],
    ["bond", VT.token(d.bond)],
    ["leaves", `N = ${d.num_leaves}; game at [${d.lo}, ${d.hi})`],
    ...(avail
      ? [["challenge", h("strong", { dataset: { testid: "availability-leaf" } }, `availability of leaf ${d.availability_leaf}`)]]
      : [
          ["disputed leaf", d.leaf_index === null ? "not reached" : h("strong", { dataset: { testid: "leaf-index" } }, `leaf ${d.leaf_index} (segment ${d.leaf_index})`)],
          ["descent", h("span", { dataset: { testid: "step-count" } }, `${steps.length} step${steps.length === 1 ? "" : "s"}`)],
          ["pre-state / claimed post-state", d.leaf_index === null ? "–" : [VT.hash(d.pre_state_root), " → ", VT.hash(d.post_state_root)]],
        ]),
    ["clocks left", `solver ${VT.seconds(d.solver_clock)} · challenger ${VT.seconds(d.challenger_clock)}${turn ? ` · ${turn} to move since ${VT.time(d.last_move_at)}` : ""}`],
  ]);

  const tree = h(
    "div",
    {},
    h("div", { class: "tree-wrap", dataset: { testid: "tree" } }, drawTree(d, steps, hashes)),
    h(
      "p",
      { class: "legend" },
      h("span"),
      `the descent: ${steps.length} challenger choice${steps.length === 1 ? "" : "s"} from the root over ${d.num_leaves} leaves`,
      d.leaf_index === null ? "" : ` to leaf ${d.leaf_index} (the big dot)`,
      d.num_leaves > FULL_TREE_MAX ? `; only the path and its siblings are drawn` : "",
      ". Hover a node for its range and hash.",
    ),
  );

  let step = 0;
  const moves = VT.table(
    [
      ["#", (m) => (m.name === "SideChosen" ? `step ${++step}` : ""), "num"],
      ["move", (m) => m.name],
      ["by", (m) => mover(d, m)],
      ["what", (m) => detail(d, m)],
      ["tx", (m) => VT.mono(VT.short(m.tx_hash, 5), `transaction ${m.tx_hash}`)],
      ["block", (m) => String(m.block_number), "num"],
      ["time (UTC)", (m) => VT.clock(m.block_time)],
      ["solver clock", (m) => VT.seconds(m.solver_clock), "num"],
      ["challenger clock", (m) => VT.seconds(m.challenger_clock), "num"],
    ],
    d.moves,
    { testid: "moves-table", rowClass: (m) => (m.name === "SideChosen" ? "step-row" : null) },
  );

  const votes = VT.table(
    [
      ["arbiter", (v) => VT.link.staker(v.arbiter, v.arbiter)],
      ["commitment", (v) => (v.commitment ? [VT.hash(v.commitment), " ", VT.tx(v.committed_in_tx)] : h("span", { class: "muted" }, "none"))],
      ["revealed result", (v) => (v.result ? VT.hash(v.result) : h("span", { class: "muted" }, "not revealed"))],
      ["vote", (v) => (v.result === null ? "–" : v.result === d.post_state_root ? VT.badge("for solver", "ok") : VT.badge("for challenger", "bad"))],
    ],
    d.votes,
    { testid: "votes-table", empty: "no committee drawn" },
  );

  const outcome = resolved
    ? [
        VT.kv([
          ["outcome", VT.badge(d.outcome)],
          ["winner", VT.link.staker(resolved.args.winner, resolved.args.winner)],
          ["loser (slashed)", VT.link.staker(resolved.args.loser, resolved.args.loser)],
          ["slashed", h("strong", { dataset: { testid: "slashed-amount" } }, VT.token(resolved.args.slashed))],
          ["votes", `${d.votes_for_solver} for the solver, ${d.votes_for_challenger} for the challenger`],
          ["majority arbiters", (resolved.args.majorityArbiters || []).map((x, i) => [i ? ", " : "", VT.link.staker(x)])],
          ["tx", [VT.tx(resolved.tx_hash), " block ", String(resolved.block_number), " · ", VT.time(resolved.block_time)]],
        ]),
        h("h2", { class: "sub" }, "Transfers in the resolving transaction"),
        VT.table(
          [
            ["event", (e) => e.name],
            ["account", (e) => VT.link.staker(e.args.account || e.args.to || e.args.challenger)],
            ["amount", (e) => VT.token(e.args.amount ?? e.args.slashed ?? e.args.value), "num"],
            ["burned", (e) => (e.args.burned === undefined ? "" : VT.token(e.args.burned)), "num"],
          ],
          d.transfers,
          { testid: "transfers-table" },
        ),
      ]
    : h("p", { class: "muted" }, `not resolved (${d.phase.replace(/_/g, " ")})`);

  const fee = d.fee_settled;
  const availability = h(
    "div",
    { dataset: { testid: "availability" } },
    h("p", {}, `The challenger could not fetch leaf ${d.availability_leaf}'s checkpoint, so the solver had to publish its state bytes on chain (StatePublisher calldata, checked against the committed leaf) before its clock ran out. `),
    h(
      "p",
      { dataset: { testid: "availability-status" } },
      d.outcome === "published"
        ? ["Published: the job reopened for a replay. ", fee ? ["The held fee of ", VT.token(fee.args.fee), " went to ", VT.link.staker(fee.args.to), fee.args.to === d.solver ? " (the solver: no lie proven)" : " (back to the challenger: the job ended slashed)", " ", VT.tx(fee.tx_hash)] : "A fee for the calldata is held until the job ends: the solver's unless the job ends slashed."]
        : d.outcome === "challenger_won"
          ? "Not published in time: the solver lost the job stake."
          : d.outcome === "superseded"
            ? "Never started: an earlier dispute settled the job."
            : `Waiting for the solver (${d.phase.replace(/_/g, " ")}).`,
    ),
  );

  main.replaceChildren(
    h("h1", {}, `Dispute #${d.dispute_id}`, VT.badge(d.phase), d.outcome !== "none" ? VT.badge(d.outcome) : null),
    h("div", { class: "grid row-gap" }, VT.card("Summary", summary), VT.card("Outcome", outcome)),
    avail ? VT.card("Availability challenge", availability) : VT.card("Descent through the trajectory tree", tree),
    VT.card("Moves (each one transaction; clocks as left after its block)", h("div", { class: "scroll-x" }, moves)),
    VT.card("Committee", votes),
  );
});
