// Shared helpers of the auditor pages. The pages read only the public JSON API (same origin); no wallet, no
// build step, no external scripts. Every value from the API reaches the DOM as text (never as HTML).
"use strict";

const VT = (() => {
  const DECIMALS = 18n;
  const UNIT = 10n ** DECIMALS;
  const NAV = [
    ["index.html", "Jobs"],
    ["disputes.html", "Disputes"],
    ["stakers.html", "Stakers"],
  ];

  /** h("a", {href: "x", class: "y"}, "text", child, [more]) -> an element; null/false children are skipped. */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    append(e, children);
    return e;
  }

  function append(parent, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return parent;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.detail ? `${body.error}: ${body.detail}` : `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    }
    const r = await fetch(url, { headers: { accept: "application/json" } });
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      body = null;
    }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }

  function param(name) {
    return new URLSearchParams(location.search).get(name);
  }

  /** wei (decimal string or number) -> "1,234.5 VERI" (exact: BigInt arithmetic). */
  function token(wei, unit = "VERI") {
    if (wei === null || wei === undefined) return "–";
    const v = BigInt(wei);
    const neg = v < 0n;
    const a = neg ? -v : v;
    const whole = (a / UNIT).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    let frac = (a % UNIT).toString().padStart(Number(DECIMALS), "0").replace(/0+$/, "");
    if (frac.length > 6) frac = frac.slice(0, 6) + "…";
    return `${neg ? "-" : ""}${whole}${frac ? "." + frac : ""} ${unit}`;
  }

  function short(hex, n = 6) {
    if (!hex) return "–";
    return hex.length > 2 * n + 4 ? `${hex.slice(0, n + 2)}…${hex.slice(-n + 2)}` : hex;
  }

  function mono(text, full) {
    return h("span", { class: "mono", title: full || text }, text);
  }

  function hash(hex) {
    return mono(short(hex, 10), hex);
  }

  function time(ts) {
    if (!ts) return "–";
    const d = new Date(Math.floor(Number(ts)) * 1000);
    return d.toISOString().replace("T", " ").replace(".000Z", " UTC");
  }

  /** chain time as "HH:MM:SS" with the full date in the tooltip (for long tables). */
  function clock(ts) {
    if (!ts) return "–";
    const full = time(ts);
    return h("span", { title: full }, full.slice(11, 19));
  }

  /** a duration in seconds, exact to the second: "45 s", "3m 05s", "23h 59m 58s". */
  function seconds(s) {
    if (s === null || s === undefined) return "–";
    s = Number(s);
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = s % 60;
    const p2 = (x) => String(x).padStart(2, "0");
    if (hh) return `${hh}h ${p2(mm)}m ${p2(ss)}s`;
    if (mm) return `${mm}m ${p2(ss)}s`;
    return `${ss} s`;
  }

  const link = {
    job: (id, text) => h("a", { href: `job.html?id=${encodeURIComponent(id)}`, class: "mono", title: id }, text || short(id, 8)),
    dispute: (id, text) => h("a", { href: `dispute.html?id=${encodeURIComponent(id)}` }, text || `#${id}`),
    staker: (addr, text) =>
      addr ? h("a", { href: `staker.html?address=${encodeURIComponent(addr)}`, class: "mono", title: addr }, text || short(addr, 6)) : "–",
  };

  function tx(hashHex) {
    return mono(short(hashHex, 8), `transaction ${hashHex}`);
  }

  function badge(text, cls) {
    return h("span", { class: `badge ${cls || text}`, dataset: { testid: "badge" } }, text.replace(/_/g, " "));
  }

  /** A table: cols = [[header, cell(row) -> node|string, className?], ...]. */
  function table(cols, rows, opts = {}) {
    if (!rows.length) return h("p", { class: "empty" }, opts.empty || "none");
    return h(
      "table",
      { dataset: opts.testid ? { testid: opts.testid } : undefined },
      h("thead", {}, h("tr", {}, cols.map(([title, , cls]) => h("th", { class: cls }, title)))),
      h(
        "tbody",
        {},
        rows.map((r, i) => h("tr", { class: opts.rowClass ? opts.rowClass(r, i) : null }, cols.map(([, cell, cls]) => h("td", { class: cls }, cell(r, i))))),
      ),
    );
  }

  function kv(pairs) {
    return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function card(title, ...body) {
    return h("section", { class: "card" }, title ? h("h2", {}, title) : null, body);
  }

  /** Frames the page (nav, title) and runs render(main) -> Promise; when done sets <body data-ready> to the
   *  milliseconds since navigation start (what a person waits for: request, scripts, API calls, rendering). */
  function page(active, render) {
    document.addEventListener("DOMContentLoaded", async () => {
      const main = document.querySelector("main");
      document.body.prepend(
        h(
          "header",
          { class: "top" },
          h("a", { class: "brand", href: "index.html" }, "veritrain auditor"),
          h("nav", {}, NAV.map(([href, name]) => h("a", { href, class: name === active ? "active" : null }, name))),
          h("span", { class: "chain", id: "chain" }),
        ),
      );
      api("/health")
        .then((hl) => {
          document.getElementById("chain").textContent =
            `chain ${hl.chain_id ?? "?"} · indexed to block ${hl.indexer.block_number ?? "?"} · ${hl.status}`;
        })
        .catch(() => {});
      try {
        await render(main);
      } catch (err) {
        main.replaceChildren(h("p", { class: "error", dataset: { testid: "error" } }, String(err.message || err)));
      }
      document.body.dataset.ready = String(Math.round(performance.now()));
    });
  }

  return { h, append, api, param, token, short, mono, hash, time, clock, seconds, link, tx, badge, table, kv, card, page, ApiError };
})();
