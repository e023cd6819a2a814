// The Sluice dashboard: polls /api/dashboard once a second and draws it; no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
let me = null;
let selected = null;
let snapshot = null;

async function api(path, options = {}) {
  const response = await fetch(path, {credentials: "same-origin", ...options,
    headers: {"Content-Type": "application/json", ...(options.headers || {})}});
  const body = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) {
    const error = new Error(body.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? "" : value;
  if (className) td.className = className;
  return td;
}

function number(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, {maximumFractionDigits: digits});
}

function say(text) { $("#message").textContent = text || ""; }

// -- login ---------------------------------------------------------------------------------

async function start() {
  try {
    me = await api("/api/me");
  } catch (error) {
    if (error.status === 401) return showLogin();
    return say(error.message);
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#who").textContent = `${me.user} (${me.privilege === "ALL" ? "full access" :
    me.privilege === "SELECT" ? "read-only" : "no access"})`;
  $("#logout").hidden = false;
  poll();
}

function showLogin() {
  $("#login").hidden = false;
  $("#app").hidden = true;
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api("/api/login", {method: "POST",
      body: JSON.stringify({user: form.get("user"), password: form.get("password")})});
    $("#login-error").textContent = "";
    start();
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/api/logout", {method: "POST"}).catch(() => {});
  location.reload();
});

// -- polling ---------------------------------------------------------------------------------

async function poll() {
  try {
    snapshot = await api("/api/dashboard");
    $("#status").textContent = "live · " + new Date(snapshot.time * 1000).toLocaleTimeString();
    draw();
  } catch (error) {
    $("#status").textContent = "not connected: " + error.message;
    if (error.status === 401) return showLogin();
  }
  setTimeout(poll, 1000);
}

function draw() {
  const pipelines = snapshot.pipelines;
  if (!pipelines.some((p) => p.name === selected)) selected = pipelines.length ? pipelines[0].name : null;
  drawPipelines(pipelines);
  drawDrills(snapshot.drills);
  const pipeline = pipelines.find((p) => p.name === selected);
  $("#detail").hidden = !pipeline;
  if (pipeline) drawDetail(pipeline);
}

function drawPipelines(pipelines) {
  const body = $("#pipelines tbody");
  body.replaceChildren();
  for (const p of pipelines) {
    const row = body.insertRow();
    row.dataset.name = p.name;
    if (p.name === selected) row.className = "selected";
    row.addEventListener("click", () => { selected = p.name; draw(); });
    cell(row, p.name);
    const state = cell(row, p.state, "state-" + p.state);
    if (p.error) state.title = p.error;
    cell(row, number(p.rows_per_sec));
    cell(row, number(p.lag_messages));
    cell(row, number(p.lag_seconds, 3));
    cell(row, p.partitions);
    cell(row, p.errors);
    const actions = row.insertCell();
    const running = p.state === "Running";
    const button = document.createElement("button");
    button.textContent = running ? "Stop" : "Start";
    button.className = running ? "stop" : "start";
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      act(p.name, running ? "stop" : "start");
    });
    actions.append(button);
  }
}

async function act(name, action) {
  try {
    const result = await api(`/api/pipelines/${encodeURIComponent(name)}/${action}`, {method: "POST"});
    say("");
    return result;
  } catch (error) {
    say(`${action} ${name}: ${error.message}`);
  }
}

// -- one pipeline ----------------------------------------------------------------------------

function drawDetail(p) {
  $("#detail-title").textContent = `${p.name} — ${p.state}` + (p.error ? `: ${p.error}` : "");
  const history = p.history;
  line($("#chart-rate"), [history.map((h) => h[1])], $("#axis-rate"), history);
  line($("#chart-lag"), [history.map((h) => h[2]), history.map((h) => h[3] ?? 0)],
    $("#axis-lag"), history);
  stages($("#chart-stages"), p.batches, $("#axis-stages"));
  const partitions = $("#partitions tbody");
  partitions.replaceChildren();
  for (const [partition, lag, seconds, cursor, latest] of p.top_partitions) {
    const row = partitions.insertRow();
    cell(row, partition); cell(row, number(lag)); cell(row, number(seconds, 3));
    cell(row, cursor); cell(row, latest);
  }
  $("#partition-summary").textContent = p.partitions > p.top_partitions.length ?
    `(the ${p.top_partitions.length} most lagging of ${p.partitions}; ` +
    `${number(p.lag_messages)} messages behind in all)` : `(${p.partitions})`;
  const errors = $("#errors tbody");
  errors.replaceChildren();
  for (const e of p.recent_errors) {
    const row = errors.insertRow();
    cell(row, e.id); cell(row, e.kind); cell(row, e.message); cell(row, e.partition);
    cell(row, e.offset); cell(row, e.record, "record");
  }
  $("#error-count").textContent = `(${p.errors})`;
  $("#replay").disabled = p.errors === 0;
}

$("#replay").addEventListener("click", async () => {
  const result = await act(selected, "replay");
  if (result && result.rows.length) {
    const [loaded, replayed, remaining] = result.rows[0];
    say(`replayed ${replayed} errors of ${selected}: ${loaded} rows loaded, ${remaining} still failing`);
  }
});

const SVG = "http://www.w3.org/2000/svg";

function line(svg, series, axis, history) {
  svg.replaceChildren();
  const width = 600, height = 160;
  const top = Math.max(1, ...series.map((s) => Math.max(0, ...s)));
  series.forEach((values, i) => {
    const own = Math.max(1e-9, ...values);
    const scale = i === 0 ? top : own; // the second series (seconds) has an axis of its own
    const points = values.map((v, k) =>
      `${(k / Math.max(1, values.length - 1)) * width},${height - 4 - (v / scale) * (height - 8)}`);
    const path = document.createElementNS(SVG, "polyline");
    path.setAttribute("points", points.join(" "));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", i === 0 ? "#4e79a7" : "#e15759");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("vector-effect", "non-scaling-stroke");
    if (i === 1) path.setAttribute("stroke-dasharray", "5 3");
    svg.append(path);
  });
  const span = history.length ? history[history.length - 1][0] - history[0][0] : 0;
  const last = series.map((s) => s.length ? s[s.length - 1] : 0);
  axis.replaceChildren(...[`−${Math.round(span)} s`, "now: " + last.map((v) => number(v, 3)).join(" · "),
    "max " + number(top)].map((t) => Object.assign(document.createElement("span"), {textContent: t})));
}

function stages(svg, batches, axis) {
  svg.replaceChildren();
  const width = 600, height = 160, names = ["extract", "transform", "parse", "load"];
  const totals = batches.map((b) => b.slice(4, 8).reduce((a, v) => a + (v || 0), 0));
  const top = Math.max(1e-6, ...totals);
  const slot = width / Math.max(1, batches.length);
  batches.forEach((b, k) => {
    let y = height;
    names.forEach((name, i) => {
      const h = ((b[4 + i] || 0) / top) * (height - 4);
      const rect = document.createElementNS(SVG, "rect");
      Object.entries({x: k * slot + 1, y: y - h, width: Math.max(1, slot - 2), height: h})
        .forEach(([key, value]) => rect.setAttribute(key, value));
      rect.setAttribute("class", name);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `batch ${b[0]}: ${name} ${number(b[4 + i], 4)} s`;
      rect.append(title);
      svg.append(rect);
      y -= h;
    });
  });
  axis.replaceChildren(...[`${batches.length} batches`, `slowest ${number(top, 3)} s`]
    .map((t) => Object.assign(document.createElement("span"), {textContent: t})));
}

// -- the demo's drills -----------------------------------------------------------------------

function drawDrills(drills) {
  $("#drills").hidden = !drills;
  if (!drills) return;
  const grid = $("#drill-grid");
  grid.replaceChildren();
  const at = (name) => drills.columns.indexOf(name);
  for (const row of drills.rows) {
    const health = row[at("health_pct")];
    const div = document.createElement("div");
    div.className = "drill" + (row[at("alerted")] ? " alerted" : "");
    const hue = Math.max(0, Math.min(120, health * 1.2));
    div.style.background = `hsl(${hue}, 60%, 38%)`;
    div.innerHTML = "";
    const name = document.createElement("span");
    name.textContent = `${row[at("rig")]} #${row[at("drill")]}`;
    const value = document.createElement("b");
    value.textContent = `${number(health)} %`;
    div.append(name, value);
    div.title = `temperature ${row[at("temp_c")]} °C, vibration ${row[at("vib_mm_s")]} mm/s`;
    grid.append(div);
  }
  const alerts = $("#alerts tbody");
  alerts.replaceChildren();
  for (const row of drills.alerts.rows) {
    const tr = alerts.insertRow();
    row.forEach((v) => cell(tr, v));
  }
}

// -- the SQL box -----------------------------------------------------------------------------

$("#query-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = $("#query-status");
  status.textContent = "running…";
  try {
    const result = await api("/api/query", {method: "POST",
      body: JSON.stringify({sql: $("#sql").value, read_only: true, limit: 1000})});
    const head = $("#result thead"), body = $("#result tbody");
    head.replaceChildren();
    body.replaceChildren();
    const tr = head.insertRow();
    result.columns.forEach((c) => tr.append(Object.assign(document.createElement("th"), {textContent: c})));
    for (const row of result.rows) {
      const r = body.insertRow();
      row.forEach((v) => cell(r, typeof v === "object" && v !== null ? JSON.stringify(v) : v));
    }
    status.textContent = `${result.rows.length} rows${result.truncated ? " (first shown)" : ""} in ` +
      `${number(result.seconds * 1000, 1)} ms`;
  } catch (error) {
    status.textContent = "";
    $("#result thead").replaceChildren();
    $("#result tbody").replaceChildren();
    say(error.message);
  }
});

start();
