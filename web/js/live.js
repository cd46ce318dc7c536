// The /ws live feed with resume (docs/websocket.md): authenticate with the token in the
// first message, subscribe to the channels the server has, remember the last id of each
// channel, and after any disconnect reconnect with backoff and subscribe with `since`,
// so nothing is missed and nothing is shown twice (ids already seen are ignored).

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 5000];

export class LiveFeed {
  // handlers: message(envelope), status(state, detail), ready(channels, fresh),
  //           resync(channel), unauthorized()
  // history: {channel: n} replays the last n messages of a fresh channel (recent queue
  // snapshots, recent alerts) right after the first subscribe.
  constructor(session, channels, handlers, history = {}) {
    this.history = history;
    this.session = session;
    this.wanted = channels;
    this.handlers = handlers;
    this.lastId = {};
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.status = "connecting";
  }

  setStatus(state, detail = "") {
    this.status = state;
    if (this.handlers.status) this.handlers.status(state, detail);
  }

  start() { this.stopped = false; this.open(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.lastId = {};
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: this.session.token }));
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(ws, event);
  }

  closed(ws, event) {
    if (ws !== this.ws || this.stopped) return;
    this.ws = null;
    if (event.code === 4401 || event.code === 1008) {
      // The token was refused: renew it once; if that fails the session signs out.
      this.session.renew().then(() => { if (this.session.signedIn) this.retry(); });
      return;
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.setStatus("reconnecting", `Live updates lost; reconnecting in ${Math.round(wait / 100) / 10} s`);
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  subscribe(available) {
    const channels = this.wanted.filter((c) => available.includes(c));
    const since = {};
    for (const c of channels) if (this.lastId[c] !== undefined) since[c] = this.lastId[c];
    this.channels = channels;
    const message = { type: "subscribe", channels, ref: "live" };
    if (Object.keys(since).length) message.since = since;
    this.ws.send(JSON.stringify(message));
  }

  receive(msg) {
    if (msg.channel !== undefined && msg.id !== undefined) {
      const last = this.lastId[msg.channel];
      if (last !== undefined && msg.id <= last) return;  // a duplicate (after `recovered`)
      this.lastId[msg.channel] = msg.id;
      this.handlers.message(msg);
      return;
    }
    const handler = this[`on_${msg.type}`];
    if (handler) handler.call(this, msg.data || {}, msg);
  }

  on_welcome(data) {
    this.subscribe(data.channels || []);
  }

  on_subscribed(data) {
    const fresh = [];
    for (const [channel, id] of Object.entries(data.last_id || {})) {
      if (this.lastId[channel] === undefined) fresh.push(channel);
      if (this.lastId[channel] === undefined || this.lastId[channel] > id) this.lastId[channel] = id;
    }
    this.attempt = 0;
    this.setStatus(data.degraded ? "degraded" : "live");
    if (this.handlers.ready) this.handlers.ready(this.channels, fresh);
    this.replayRecent(fresh, data.last_id || {});
  }

  replayRecent(fresh, lastIds) {
    const since = {};
    for (const channel of fresh) {
      const n = this.history[channel];
      if (n && lastIds[channel] > 0) {
        since[channel] = Math.max(0, lastIds[channel] - n);
        this.lastId[channel] = since[channel];
      }
    }
    const channels = Object.keys(since);
    if (channels.length) this.ws.send(JSON.stringify({ type: "subscribe", channels, since, ref: "recent" }));
  }

  on_resync_required(data) {
    this.lastId[data.channel] = data.last_id;
    if (this.handlers.resync) this.handlers.resync(data.channel);
  }

  on_degraded() { this.setStatus("degraded", "Live updates paused: the server lost its message feed"); }

  on_recovered(data) {
    for (const [channel, id] of Object.entries(data.last_id || {})) {
      if ((data.resync || []).includes(channel)) this.lastId[channel] = id;
    }
    this.setStatus("live");
    // The database is the truth: refresh what the page shows (docs/websocket.md).
    for (const channel of this.channels || []) if (this.handlers.resync) this.handlers.resync(channel);
  }

  on_error(data) { console.warn("live feed error", data); }
}
