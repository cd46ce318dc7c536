// Small DOM and formatting helpers shared by both pages.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// el("td", {class: "x", text: "..."}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function parseTime(iso) {
  return iso ? Date.parse(iso) : NaN;
}

// 75 -> "1:15", 3675 -> "1:01:15"
export function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

export function since(iso, now = Date.now()) {
  const t = parseTime(iso);
  return Number.isFinite(t) ? clock((now - t) / 1000) : "–";
}

export function localTime(iso) {
  const t = parseTime(iso);
  return Number.isFinite(t) ? new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "–";
}

export function isNewer(incoming, current) {
  if (!current) return true;
  const a = parseTime(incoming.updated_at);
  const b = parseTime(current.updated_at);
  return !(Number.isFinite(a) && Number.isFinite(b)) || a >= b;
}

export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
}

export const LIVE_STATUSES = new Set(["initiated", "ringing", "in-progress"]);
