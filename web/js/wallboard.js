// The supervisor wallboard: a REST snapshot, then the /ws feed with resume.
import { TodayCharts, midnight } from "./charts.js";
import { LiveFeed } from "./live.js";
import { Session, describeError } from "./session.js";
import { wireSignIn } from "./signin.js";
import { KeyedTable } from "./tables.js";
import { $, LIVE_STATUSES, el, isNewer, parseTime, setText, since } from "./util.js";

const CHANNELS = ["calls", "agents", "queues", "performance"];
const MAX_ALERTS = 20;
const ENDED_ROW_MS = 4000;   // an ended call stays visible this long, with its final status
// For bench/bench_wallboard.py: per message, received -> row updated (latencies) and the
// server's publication time -> row updated (endToEnd), in ms.
const STATS = (window.ccStats = { latencies: [], endToEnd: [], applied: 0 });

const session = new Session("wallboard");
let feed = null;
let charts = null;
const today = new Map();      // call id -> call (today's calls, for the charts)
const ended = new Map();      // call id -> updated_at of its end (late snapshots cannot revive it)

function mosCell(call) {
  const live = call.quality && call.quality.live;
  const mos = live && live.last ? live.last.mos : call.quality && call.quality.mos_avg;
  const degraded = !!(live && live.alert);
  const text = Number.isFinite(mos) ? mos.toFixed(2) : "–";
  return { text, cls: `mos ${degraded ? "mos-bad" : Number.isFinite(mos) ? "mos-ok" : ""}`,
    label: degraded ? `MOS ${text}, quality degraded` : `MOS ${text}` };
}

function callSeconds(call, now) {
  const start = parseTime(call.answered_at || call.created_at);
  const end = call.ended_at ? parseTime(call.ended_at) : now;
  return Math.max(0, (end - start) / 1000);
}

const calls = new KeyedTable($("#calls-body"), $("#calls-empty"), $("#calls-count"), [
  { cell: (c) => ({ text: c.status, cls: `status status-${c.status}` }) },
  { cell: (c) => c.direction },
  { cell: (c) => agentName(c.agent_id) },
  { cell: (c) => (c.direction === "inbound" ? c.from_number : c.to_number) || "–" },
  { cell: queueOfCall },
  { ticks: true, cell: (c, now) => since(new Date(now - callSeconds(c, now) * 1000).toISOString(), now) },
  { cell: mosCell },
], (a, b) => parseTime(b.created_at) - parseTime(a.created_at));

const agents = new KeyedTable($("#agents-body"), $("#agents-empty"), $("#agents-count"), [
  { cell: (a) => a.name && a.name !== a.id ? `${a.name} (${a.id})` : a.id },
  { cell: (a) => ({ text: a.state_reason ? `${a.state} · ${a.state_reason}` : a.state, cls: `state state-${a.state}` }) },
  { ticks: true, cell: (a, now) => since(a.state_since, now) },
  { cell: phoneCell },
], (a, b) => (a.id < b.id ? -1 : 1));

// Whether FreeSWITCH has the agent's phone registered (REST list; live messages do not
// carry it, so the last known value is kept). Text, not only colour.
function phoneCell(agent) {
  if (agent.phone_registered === true) return { text: "registered", cls: "phone phone-on" };
  if (agent.phone_registered === false) return { text: "offline", cls: "phone phone-off" };
  return "–";
}

const queues = new KeyedTable($("#queues-body"), null, null, [
  { cell: (q) => q.name || q.id },
  { cell: (q) => pick(q, ["callers_waiting"], 0) },
  { cell: (q) => secondsText(pick(q, ["longest_wait_seconds"], null)) },
  { cell: (q) => (q.agents ? q.agents.available || 0 : "–") },
  { cell: (q) => percent(q.today ? q.today.service_level : null) },
], (a, b) => ((a.name || a.id) < (b.name || b.id) ? -1 : 1));

function agentName(agentId) {
  if (!agentId) return "–";
  const agent = agents.get(agentId);
  return agent && agent.name ? agent.name : agentId;
}

function pick(obj, names, fallback) {
  for (const n of names) if (obj[n] !== undefined && obj[n] !== null) return obj[n];
  return fallback;
}
function secondsText(s) { return Number.isFinite(s) ? `${Math.round(s)} s` : "–"; }
function percent(v) {
  if (!Number.isFinite(v)) return "–";
  return `${Math.round(v <= 1 ? v * 100 : v)} %`;
}

// ----- applying changes -------------------------------------------------------
function applyCall(call, type) {
  if (type === "call.deleted") { calls.remove(call.id); today.delete(call.id); return; }
  const current = calls.get(call.id) || today.get(call.id);
  if (!isNewer(call, current)) return;
  if (ended.has(call.id) && parseTime(call.updated_at) < ended.get(call.id)) return;
  const row = call;
  if (type === "call.quality_degraded" && call.alert) {
    row.quality = row.quality || {};
    row.quality.live = { ...(row.quality.live || {}), alert: call.alert };
  }
  if (type === "call.quality_recovered") {
    row.quality = { ...(row.quality || {}), live: { ...((row.quality || {}).live || {}), alert: null } };
  }
  if (parseTime(call.created_at) >= midnight().getTime()) today.set(call.id, row);
  if (LIVE_STATUSES.has(call.status)) {
    calls.upsert(call.id, row);
  } else if (calls.has(call.id)) {
    ended.set(call.id, parseTime(call.updated_at));
    calls.upsert(call.id, row);
    setTimeout(() => { const c = calls.get(call.id); if (c && !LIVE_STATUSES.has(c.status)) calls.remove(call.id); }, ENDED_ROW_MS);
  }
  chartsDirty = true;
}

function applyAgent(agent, type) {
  if (type === "agent.deleted") { agents.remove(agent.id); return; }
  const known = agents.get(agent.id);
  if (agent.phone_registered == null && known) agent.phone_registered = known.phone_registered;
  if (isNewer(agent, known)) agents.upsert(agent.id, agent);
  if (!kpiTimer) kpiTimer = setTimeout(updateKpis, 250);
}

// GET /api/queues gives each queue's settings; queue.snapshot its state now.
const callQueue = new Map();   // call id -> queue name, from the queue.caller_* messages

function queueOfCall(c) {
  return c.queue || c.queue_id || callQueue.get(c.id) || (c.metadata && c.metadata.queue) || "–";
}

function noteCaller(entry) {
  if (!entry.call_id || !entry.queue_id) return;
  const q = queues.get(String(entry.queue_id));
  callQueue.set(entry.call_id, (q && q.name) || entry.queue_id);
  const call = calls.get(entry.call_id);
  if (call) calls.upsert(entry.call_id, call);
}

function applyQueues(data, type) {
  if (type && type.startsWith("queue.caller_")) { noteCaller(data); return; }
  if (type === "queue.deleted") { queues.remove(String(data.id || data.queue_id)); showQueues(); return; }
  if (type && type !== "queue.snapshot" && !type.startsWith("queue.created") && !type.startsWith("queue.updated")) return;
  const list = Array.isArray(data) ? data : [data];
  for (const q of list) {
    const id = q && (q.queue_id || q.id);
    if (id) queues.upsert(String(id), { ...(queues.get(String(id)) || {}), ...q, id: String(id) });
  }
  showQueues();
}

function showQueues() {
  const any = queues.rows.size > 0;
  $("#queues-table").hidden = !any;
  $("#queues-empty").hidden = any;
}

function alertText(type, d) {
  const where = d.process ? ` (${d.process})` : "";
  if (type === "performance.slow_request") return `Slow request: ${d.method} ${d.route} took ${Math.round(d.duration_ms)} ms${where}`;
  if (type === "performance.memory_high") return `Memory high: ${d.role} at ${Math.round(d.rss_mb)} MB${where}`;
  if (type === "performance.queue_backlog") return `Job backlog: ${d.queue} has ${d.depth} waiting${where}`;
  return `${type}${where}`;
}

const shownAlerts = new Set();
function addAlert(msg) {
  if (shownAlerts.has(msg.id)) return;
  shownAlerts.add(msg.id);
  const list = $("#alerts-list");
  const time = new Date(parseTime(msg.ts) || Date.now()).toLocaleTimeString();
  list.prepend(el("li", { class: "alert" }, el("time", { datetime: msg.ts, text: time }), " ", alertText(msg.type, msg.data || {})));
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  $("#alerts-empty").hidden = true;
}

// Each message is applied as it arrives: DOM writes only (no layout is read), so the
// browser lays out and paints once per frame however many messages came in it.
function onMessage(msg) {
  const received = performance.now();
  if (msg.channel === "calls") applyCall(msg.data, msg.type);
  else if (msg.channel === "agents") applyAgent(msg.data, msg.type);
  else if (msg.channel === "queues") applyQueues(msg.data, msg.type);
  else if (msg.channel === "performance") addAlert(msg);
  STATS.latencies.push(performance.now() - received);
  STATS.endToEnd.push(Date.now() - parseTime(msg.ts));
  if (STATS.latencies.length > 20000) { STATS.latencies.splice(0, 10000); STATS.endToEnd.splice(0, 10000); }
  STATS.applied += 1;
  if (!kpiTimer) kpiTimer = setTimeout(updateKpis, 250);
}

let kpiTimer = null;
function updateKpis() {
  kpiTimer = null;
  setText($("#kpi-live"), calls.items().filter((c) => LIVE_STATUSES.has(c.status)).length);
  setText($("#kpi-ready"), agents.items().filter((a) => a.state === "available").length);
}

// ----- snapshots ------------------------------------------------------------------
async function snapshotCalls() {
  const lists = await Promise.all([...LIVE_STATUSES].map((status) => session.getAll("/api/calls/history", { status })));
  for (const call of lists.flat()) applyCall(call, "snapshot");
}

async function snapshotAgents() {
  for (const agent of await session.get("/api/agents")) applyAgent(agent, "snapshot");
}

async function snapshotQueues() {
  try {
    applyQueues(await session.get("/api/queues"));
  } catch (err) {
    if (err.status !== 404) throw err;
    showQueues();  // no queues service here: "No queues."
  }
}

async function snapshotToday() {
  const rows = await session.getAll("/api/calls/history", { date_from: midnight().toISOString(), sort: "created_at" }, 20);
  for (const call of rows) if (isNewer(call, today.get(call.id))) today.set(call.id, call);
  chartsDirty = true;
  await refreshStatistics();
}

// Today's answer rate and average MOS from GET /api/calls/statistics (local day).
async function refreshStatistics() {
  if (!session.signedIn) return;
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const day = new Date().toLocaleDateString("en-CA");
  try {
    const stats = await session.get(`/api/calls/statistics?time_zone=${encodeURIComponent(tz)}&date_from=${day}&date_to=${day}`);
    const t = stats.totals || {};
    setText($("#kpi-answer"), Number.isFinite(t.answer_rate) ? `${Math.round(t.answer_rate * 100)} %` : "–");
    setText($("#kpi-mos"), Number.isFinite(t.mos_avg) ? t.mos_avg.toFixed(2) : "–");
  } catch (err) {
    console.warn("statistics", err);
  }
}

const SNAPSHOTS = { calls: snapshotCalls, agents: snapshotAgents, queues: snapshotQueues };

async function takeSnapshot(channel) {
  try {
    if (SNAPSHOTS[channel]) await SNAPSHOTS[channel]();
  } catch (err) {
    setText($("#live-status"), describeError(err));
  }
}

// ----- charts ---------------------------------------------------------------------
let chartsDirty = false;
function drawCharts() {
  if (!chartsDirty || !session.signedIn) return;
  chartsDirty = false;
  if (!charts) charts = new TodayCharts($("#chart-calls"), $("#chart-sl"));
  const f = charts.draw([...today.values()]);
  setText($("#kpi-calls"), f.total);
  setText($("#kpi-sl"), f.slNow === null ? "–" : `${f.slNow} %`);
}

// ----- the page -------------------------------------------------------------------
const STATUS_TEXT = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", degraded: "Live updates paused", offline: "Offline" };

function showStatus(state, detail) {
  const node = $("#live-status");
  node.dataset.state = state;
  setText(node, STATUS_TEXT[state] || state);
  node.title = detail || "";
}

function start() {
  feed = new LiveFeed(session, CHANNELS, {
    message: onMessage,
    status: showStatus,
    ready: (channels, fresh) => {
      for (const channel of fresh) takeSnapshot(channel);
      if (!channels.includes("queues") && fresh.includes("calls")) takeSnapshot("queues");
    },
    resync: takeSnapshot,
  }, { queues: 200, performance: MAX_ALERTS });
  showStatus("connecting");
  feed.start();
  snapshotToday();
}

function stop() {
  if (feed) feed.stop();
  feed = null;
  calls.clear(); agents.clear(); queues.clear(); today.clear(); ended.clear(); callQueue.clear();
  $("#alerts-list").replaceChildren();
  shownAlerts.clear();
  if (charts) charts.destroy();
  charts = null;
  showStatus("offline");
}

setInterval(() => {
  const started = performance.now();
  const now = Date.now();
  calls.tick(now);
  agents.tick(now);
  STATS.tickMs = performance.now() - started;
}, 1000);
setInterval(() => { chartsDirty = chartsDirty || today.size > 0; drawCharts(); }, 30000);
setInterval(drawCharts, 2000);
setInterval(refreshStatistics, 30000);

wireSignIn(session, {
  onSignedIn: start,
  onSignedOut: stop,
  accept: (s) => (s.role === "agent" ? "The wallboard needs a supervisor or admin key; agents use the agent console." : null),
});
