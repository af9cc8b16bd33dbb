// redlab demo --web. Everything on this page is built with createElement and
// textContent: no text from a user or a server ever goes through innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#0969da", "#c2410c", "#8250df", "#1a7f37", "#bf3989", "#6e7781", "#0a7ea4", "#9a6700"];
const WINDOW_MS = 5 * 60 * 1000;

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return v.toFixed(1) + " ms";
  return v.toFixed(2) + " ms";
}

function uptime(s) {
  if (s === null || s === undefined) return "–";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

const state = {
  hello: null,
  nodes: [],
  replicas: [],
  history: [],      // {t, lag: [..]} in the order of hello.replicas
  entries: new Map(), // key -> {query, deadline (performance.now ms), ttl0}
  skew: 0,          // server unix ms minus this clock's
};

// ---- the event stream -------------------------------------------------
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => setLive(true));
  es.addEventListener("error", () => setLive(false));
  es.addEventListener("hello", (e) => onHello(JSON.parse(e.data)));
  es.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
  es.addEventListener("expiry", (e) => addExpiry(JSON.parse(e.data), true));
  es.addEventListener("query", (e) => addHistory(JSON.parse(e.data)));
}

function setLive(on) {
  const l = $("live");
  l.className = "live " + (on ? "on" : "off");
  l.textContent = on ? "live" : "reconnecting…";
  document.body.dataset.live = on ? "1" : "0";
}

function onHello(h) {
  state.hello = h;
  state.replicas = h.replicas;
  state.history = h.history.map((p) => ({ t: p.t_ms, lag: p.lag_ms }));
  const masters = h.nodes.filter((n) => n.expected_role === "master");
  const reps = h.nodes.length - masters.length;
  $("summary").textContent =
    (h.cluster ? "Redis Cluster, " + masters.length + " shards" : "master " + masters[0].address) +
    " · " + reps + (reps === 1 ? " replica" : " replicas") +
    " · TTL " + (h.ttl_ms / 1000) + " s · database delay " + (h.source_delay_ms / 1000) + " s";
  $("expiries").replaceChildren();
  for (const x of h.expiries.slice().reverse()) addExpiry(x, false);
  renderNodes(h.nodes);
  renderHow(h);
  renderChart();
}

function onSnapshot(s) {
  state.skew = s.t_ms - Date.now();
  renderNodes(s.nodes);
  const point = { t: s.t_ms, lag: [] };
  for (const name of state.replicas) {
    const n = s.nodes.find((x) => x.name === name);
    point.lag.push(n && n.status !== "down" ? n.lag_ms : null);
  }
  state.history.push(point);
  while (state.history.length && state.history[0].t < s.t_ms - WINDOW_MS) state.history.shift();
  renderChart();
  syncEntries(s.entries);
}

// ---- nodes ------------------------------------------------------------
function renderNodes(nodes) {
  state.nodes = nodes;
  const box = $("nodes");
  const cards = nodes.map((n) => {
    const cls = n.status === "up" ? "up" : n.status === "down" || n.status === "unknown" ? "down" : "warn";
    const rows = [
      ["status", el("span", { class: "status" }, n.status)],
      ["role", el("span", { class: "role" }, n.role || "–")],
      ["keys", n.keys === null || n.keys === undefined ? "–" : n.keys],
      ["memory", n.memory || "–"],
      ["uptime", uptime(n.uptime_s)],
    ];
    if (n.expected_role === "replica") rows.push(["lag", ms(n.lag_ms)]);
    const dl = el("dl");
    for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { class: "f-" + k }, v));
    let why = null;
    if (n.status === "down") {
      const since = n.down_since_ms ? new Date(n.down_since_ms - state.skew).toLocaleTimeString() : "";
      why = el("p", { class: "why" }, (since ? "down since " + since + ": " : "") + (n.error || "no answer"));
    } else if (n.status !== "up" && n.status !== "unknown") {
      why = el("p", { class: "why" }, n.error || n.status);
    }
    return el("article", { class: "card " + cls, "data-name": n.name, "data-status": n.status },
      el("h3", {}, el("span", {}, n.name), el("span", { class: "muted small" }, n.expected_role)),
      el("div", { class: "addr" }, n.address),
      dl, why);
  });
  box.replaceChildren(...cards);
}

// ---- the lag chart (hand-drawn SVG) ----------------------------------
function renderChart() {
  const box = $("lag-chart");
  const W = Math.max(240, Math.round(box.clientWidth || 600)), H = 180, L = 62, R = 10, T = 10, B = 22;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  const now = state.history.length ? state.history[state.history.length - 1].t : Date.now();
  // The last five minutes, or since the page started when that is shorter.
  const first = state.history.length ? state.history[0].t : now;
  const span = Math.max(10000, Math.min(WINDOW_MS, now - first));
  const t0 = now - span;
  let max = 1;
  for (const p of state.history) for (const v of p.lag) if (v !== null && v > max) max = v;
  max = niceCeil(max);
  const x = (t) => L + (W - L - R) * (t - t0) / span;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  s.append(svg("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }));
  s.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }));
  for (const v of [max, max / 2, 0]) {
    const t = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = v === 0 ? "0" : ms(v);
    s.append(t);
  }
  const ago = (d) => d >= 60000 ? "−" + (d / 60000).toFixed(d % 60000 ? 1 : 0) + " min" : "−" + Math.round(d / 1000) + " s";
  for (const [tt, label, anchor] of [[t0, ago(span), "start"], [t0 + span / 2, ago(span / 2), "middle"], [now, "now", "end"]]) {
    const t = svg("text", { x: x(tt), y: H - 6, "text-anchor": anchor });
    t.textContent = label;
    s.append(t);
  }
  state.replicas.forEach((name, i) => {
    let d = "", pen = false;
    for (const p of state.history) {
      const v = p.lag[i];
      if (v === null || v === undefined || p.t < t0) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(p.t).toFixed(1) + " " + y(Math.min(v, max)).toFixed(1) + " ";
      pen = true;
    }
    if (d) s.append(svg("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, "stroke-linejoin": "round" }));
  });
  box.replaceChildren(s);
  const legend = $("lag-legend");
  legend.replaceChildren(...state.replicas.map((name, i) => {
    const last = state.history.length ? state.history[state.history.length - 1].lag[i] : null;
    return el("span", { "data-name": name },
      el("span", { class: "sw" }), name + " " + (last === null || last === undefined ? "no reading" : ms(last)));
  }));
  legend.querySelectorAll(".sw").forEach((sw, i) => { sw.style.background = COLORS[i % COLORS.length]; });
  if (!state.replicas.length) legend.replaceChildren(el("span", { class: "muted" }, "No replica: nothing replicates."));
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ---- cached entries --------------------------------------------------
function syncEntries(list) {
  const seen = new Set();
  const now = performance.now();
  for (const e of list) {
    seen.add(e.key);
    const known = state.entries.get(e.key);
    const deadline = now + e.ttl_ms;
    if (!known) state.entries.set(e.key, { query: e.query, deadline, ttl0: Math.max(e.ttl_ms, state.hello ? state.hello.ttl_ms : e.ttl_ms) });
    else known.deadline = deadline;
  }
  for (const k of [...state.entries.keys()]) if (!seen.has(k)) state.entries.delete(k);
  renderEntries();
}

function renderEntries() {
  const body = $("entries").querySelector("tbody");
  const now = performance.now();
  const rows = [...state.entries.entries()].map(([key, e]) => {
    const left = Math.max(0, e.deadline - now);
    const bar = el("div", { class: "bar" }, el("i"));
    bar.firstChild.style.width = (100 * left / e.ttl0).toFixed(1) + "%";
    const ttl = left > 0 ? (left / 1000).toFixed(1) + " s" : "expired";
    return el("tr", { "data-key": key, class: left > 0 ? "" : "expired" },
      el("td", { title: e.query }, e.query),
      el("td", { class: "key", title: key }, key),
      el("td", {}, el("span", { class: "ttl" }, ttl), bar));
  });
  body.replaceChildren(...rows);
  $("entries-empty").hidden = rows.length > 0;
}

function addExpiry(x, fresh) {
  const list = $("expiries");
  const nodes = x.nodes.map((n) => {
    let what;
    if (n.error) what = n.name + ": " + n.error;
    else if (n.role === "master") {
      const d = n.gone_after_expiry_ms;
      what = n.name + " (master) dropped it " + (d < 0 ? "−" + ms(-d) : "+" + ms(d)) +
        " from the end of its TTL by redlab's clock (± " + ms(n.resolution_ms) + ")";
    }
    else if (n.measured_by === "exists") what = n.name + " hid it " + ms(n.gap_ms) + " after the master (MEMORY is not allowed: the DEL itself was not seen)";
    else what = n.name + " (replica) received the DEL " + ms(n.gap_ms) + " after the master (± " + ms(n.resolution_ms) + ")";
    return el("li", { "data-name": n.name, class: n.error ? "err" : "" }, what);
  });
  const when = new Date(x.expected_at_ms - state.skew).toLocaleTimeString();
  const item = el("li", { "data-key": x.key }, el("strong", {}, "“" + x.query + "”"), " expired at " + when, el("ul", {}, ...nodes));
  list.prepend(item);
  while (list.children.length > 10) list.lastChild.remove();
  $("expiries-empty").hidden = true;
  if (fresh) state.entries.delete(x.key);
}

// ---- the query box ---------------------------------------------------
async function ask(ev) {
  ev.preventDefault();
  const input = $("query-input"), button = $("query-submit");
  const q = input.value.trim();
  if (!q) return;
  button.disabled = true;
  const box = $("result");
  box.className = "result pending";
  box.replaceChildren(el("p", { class: "muted" }, "Looking “" + q + "” up…"));
  try {
    const r = await fetch("/api/query", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: q }),
    });
    const a = await r.json();
    if (!r.ok) throw new Error(a.error || r.statusText);
    showAnswer(a);
  } catch (e) {
    box.className = "result error";
    box.replaceChildren(el("p", { id: "result-error" }, "The lookup failed: " + e.message));
  } finally {
    button.disabled = false;
  }
}

function showAnswer(a) {
  const box = $("result");
  box.className = "result " + (a.cache_hit ? "hit" : "miss");
  box.dataset.outcome = a.outcome;
  const from = a.cache_hit
    ? "from the cache on " + a.served_by.name + " (" + a.served_by.address + ")"
    : "from the database (simulated, " + (state.hello ? state.hello.source_delay_ms / 1000 + " s" : "slow") + ")";
  const parts = [
    el("div", { class: "head" },
      el("span", { id: "result-outcome", class: "badge " + (a.cache_hit ? "hit" : "miss") }, a.outcome),
      el("span", { id: "result-time", class: "time" }, ms(a.elapsed_ms)),
      el("span", { id: "result-source" }, from)),
    el("p", { class: "answer" }, a.result),
  ];
  if (!a.cache_hit) {
    parts.push(el("p", {}, "Read on " + a.served_by.name + ": not cached. Written to " + a.written_to.name +
      " (" + a.written_to.address + ") in " + ms(a.write_ms) + " with a TTL of " + a.ttl_s + " s."));
    if (a.replicas.length) {
      parts.push(el("ul", { class: "seen", id: "result-replicas" }, ...a.replicas.map((r) =>
        el("li", { "data-name": r.name }, r.visible_after_ms !== null
          ? r.name + " (" + r.address + ") could read it " + ms(r.visible_after_ms) + " after the write"
          : r.name + " (" + r.address + "): " + r.error))));
    }
  }
  if (a.note) parts.push(el("p", { class: "muted" }, a.note));
  box.replaceChildren(...parts);
}

function addHistory(a) {
  const h = $("history");
  h.prepend(el("li", {},
    el("span", { class: "badge " + (a.cache_hit ? "hit" : "miss") }, a.outcome),
    el("span", { class: "q", title: a.query }, a.query),
    el("span", { class: "t" }, ms(a.elapsed_ms)),
    el("span", { class: "muted" }, a.cache_hit ? a.served_by.name : "database")));
  while (h.children.length > 6) h.lastChild.remove();
}

// ---- how it works, with the real addresses -----------------------------
function renderHow(h) {
  const masters = h.nodes.filter((n) => n.expected_role === "master");
  const replicas = h.nodes.filter((n) => n.expected_role === "replica");
  const m = masters.map((n) => n.name + " " + n.address).join(", ");
  const r = replicas.length ? replicas.map((n) => n.name + " " + n.address).join(", ") : "no replica";
  const code = (t) => el("code", {}, t);
  $("how-miss").replaceChildren("The app reads ", code(h.prefix + "query:<text>"),
    " on a replica that is up (or the master). Not there: it asks the database, which takes " +
    h.source_delay_ms / 1000 + " s, then writes the answer with ", code("SET … PX " + h.ttl_ms),
    " on " + (h.cluster ? "the master of the key's shard (" + m + ")" : "the master (" + m + ")") + ".");
  $("how-hit").replaceChildren("The next read of the same text finds the entry and answers in about a millisecond, " +
    "until its TTL of " + h.ttl_ms / 1000 + " s runs out; then the next read misses again.");
  $("how-repl").replaceChildren("Every write on the master streams to its replicas (" + r + "). " +
    "The page times how long each write takes to be readable on each replica, and when an entry expires, " +
    "how long the master's DEL takes to reach them.");
}

setInterval(renderEntries, 100);
window.addEventListener("resize", renderChart);
$("query-form").addEventListener("submit", ask);
setLive(false);
connect();
