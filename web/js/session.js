// The sign-in session: an API key pasted once is exchanged for a short-lived token
// (POST /api/auth/token); the token is renewed before it expires
// (POST /api/auth/token/refresh) and forgotten on sign-out. The key itself is never
// stored: only the token, its expiry, role and agent id (sessionStorage, per page).

const RENEW_MARGIN = 0.2;      // renew when 20 % of the lifetime is left ...
const RENEW_MIN_MS = 2000;     // ... but never sooner than 2 s from now
const RETRY_MS = 5000;         // a renewal that failed on the network is retried

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.errorId = body && body.error_id;
    this.body = body;
  }
}

export function describeError(err) {
  if (err && err.userMessage) return err.userMessage;
  if (err instanceof ApiError) {
    if (err.status === 401) return "Your API key is invalid, expired or revoked. Sign in again with a valid key.";
    if (err.status === 403) return `Not allowed: ${err.message}`;
    return err.message;
  }
  return "The service cannot be reached. Check the network and try again.";
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { message: text.slice(0, 200) }; }
}

export class Session {
  constructor(page) {
    this.storageKey = `cc.session.${page}`;
    this.listeners = new Set();
    this.timer = null;
    this.state = this.load();
    this.renewals = 0;
    if (this.state) this.schedule();
  }

  load() {
    try {
      const state = JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
      return state && state.token && state.expiresAt > Date.now() ? state : null;
    } catch { return null; }
  }

  save(state) {
    this.state = state;
    if (state) sessionStorage.setItem(this.storageKey, JSON.stringify(state));
    else sessionStorage.removeItem(this.storageKey);
    this.schedule();
    for (const fn of this.listeners) fn(state);
  }

  onChange(fn) { this.listeners.add(fn); }
  get token() { return this.state && this.state.token; }
  get role() { return this.state && this.state.role; }
  get agentId() { return this.state && this.state.agentId; }
  get signedIn() { return !!this.state; }

  async exchange(path, credential) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { Authorization: `Bearer ${credential}`, "Content-Type": "application/json" },
      body: "{}",
    });
    const body = await readBody(resp);
    if (!resp.ok) throw new ApiError(resp.status, body);
    const state = {
      token: body.token, role: body.role, agentId: body.agent_id || null,
      expiresAt: Date.now() + body.expires_in * 1000, lifetimeMs: body.expires_in * 1000,
    };
    const refusal = this.accept ? this.accept(state) : null;
    if (refusal) throw Object.assign(new Error(refusal), { userMessage: refusal });
    this.save(state);
    return this.state;
  }

  signIn(apiKey) { return this.exchange("/api/auth/token", apiKey.trim()); }

  async renew() {
    if (!this.state) return null;
    try {
      await this.exchange("/api/auth/token/refresh", this.state.token);
      this.renewals += 1;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this.signOut(describeError(err));
      } else {
        this.timer = setTimeout(() => this.renew(), RETRY_MS);
      }
    }
    return this.state;
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.state) return;
    const left = this.state.expiresAt - Date.now();
    const wait = Math.max(RENEW_MIN_MS, left - this.state.lifetimeMs * RENEW_MARGIN);
    this.timer = setTimeout(() => this.renew(), Math.min(wait, left - 500));
  }

  signOut(reason = null) {
    clearTimeout(this.timer);
    this.signOutReason = reason;
    this.save(null);
  }

  // One API request with the token; a 401 ends the session with a clear message.
  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new Error("network");
    }
    const data = await readBody(resp);
    if (resp.status === 401) {
      this.signOut(describeError(new ApiError(401, data)));
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return { data, headers: resp.headers };
  }

  async get(path) { return (await this.request("GET", path)).data; }
  async post(path, body = {}) { return (await this.request("POST", path, body)).data; }
  async put(path, body = {}) { return (await this.request("PUT", path, body)).data; }

  // Every page of a list route (X-Pagination), up to maxPages pages.
  async getAll(path, params = {}, maxPages = 20) {
    const rows = [];
    for (let page = 1; page <= maxPages; page += 1) {
      const query = new URLSearchParams({ ...params, page: String(page), page_size: "500" });
      const { data, headers } = await this.request("GET", `${path}?${query}`);
      rows.push(...data);
      const info = JSON.parse(headers.get("X-Pagination") || "{}");
      if (!info.next_page) break;
    }
    return rows;
  }
}
