// The agent's browser phone: SIP over WebSocket (SIP.js, vendored in /assets/vendor) to
// FreeSWITCH's internal profile, registered as the agent's directory user with the
// credentials the service hands out (GET /api/agents/<id>/phone/config). Rings with the
// caller id (and queue), answer / reject / hang up, mute, hold, DTMF, microphone and
// speaker choice; registers again with backoff when the WebSocket drops, and says why
// when FreeSWITCH refuses the credentials.
//
// mountPhone(container, session) -> Phone; phone.stop() unregisters and removes it.
import { Registerer, RegistererState, SessionState, UserAgent } from "../vendor/sip.min.js";

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const DTMF_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
const ENABLED_KEY = "cc.phone.enabled";  // localStorage: this browser is the agent's phone
const REG_TEXT = {
  off: "Off", connecting: "Connecting…", registered: "Registered", unregistered: "Not registered",
  offline: "Offline, reconnecting…", refused: "Refused", disabled: "Unavailable",
};

function node(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") n.textContent = v;
    else if (v === true) n.setAttribute(k, "");
    else if (v !== false && v != null) n.setAttribute(k, v);
  }
  n.append(...children);
  return n;
}

function ensureStyles() {
  if (document.querySelector("link[data-phone-css]")) return;
  document.head.append(node("link", { rel: "stylesheet", href: "/assets/phone/phone.css", "data-phone-css": "1" }));
}

function buildUi() {
  const keypad = node("div", { class: "keypad phone-keypad", id: "phone-dtmf", role: "group", "aria-label": "Phone keypad (tones)" },
    ...DTMF_KEYS.map((k) => node("button", { type: "button", "data-key": k, text: k })));
  return node("section", { class: "card phone", id: "phone", "aria-labelledby": "phone-title", "data-call": "idle" },
    node("h2", { id: "phone-title" }, "Browser phone ",
      node("span", { id: "phone-reg", class: "phone-reg", role: "status", "data-state": "off", text: REG_TEXT.off })),
    node("p", { id: "phone-problem", class: "error", role: "alert", hidden: true }),
    node("div", { class: "button-row" },
      node("button", { id: "phone-enable", type: "button", class: "primary", text: "Use this browser as my phone" }),
      node("button", { id: "phone-disable", type: "button", hidden: true, text: "Stop using this browser as my phone" })),
    node("div", { id: "phone-incoming", class: "phone-incoming", hidden: true },
      node("p", {}, "Incoming call from ", node("strong", { id: "phone-caller" }), " ", node("span", { id: "phone-queue", class: "muted" })),
      node("div", { class: "button-row" },
        node("button", { id: "phone-answer", type: "button", class: "primary", text: "Answer" }),
        node("button", { id: "phone-reject", type: "button", class: "danger", text: "Reject" }))),
    node("div", { id: "phone-active", hidden: true },
      node("p", {}, "On the phone with ", node("strong", { id: "phone-peer" }), " ", node("span", { id: "phone-call-state", class: "muted" })),
      node("div", { class: "button-row" },
        node("button", { id: "phone-hangup", type: "button", class: "danger", text: "Hang up" }),
        node("button", { id: "phone-mute", type: "button", "aria-pressed": "false", text: "Mute" }),
        node("button", { id: "phone-hold", type: "button", "aria-pressed": "false", text: "Hold" })),
      keypad),
    node("details", { class: "phone-devices" }, node("summary", { text: "Headset" }),
      node("label", { for: "phone-mic", text: "Microphone" }), node("select", { id: "phone-mic" }),
      node("label", { for: "phone-speaker", text: "Speaker" }), node("select", { id: "phone-speaker" })),
    node("audio", { id: "phone-audio", autoplay: true }));
}

export class Phone {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.ua = null;
    this.registerer = null;
    this.call = null;          // the SIP.js Invitation (ringing or answered)
    this.attempt = 0;          // reconnection attempts in a row
    this.refusals = 0;         // registrations refused in a row (then new credentials, once)
    this.stopping = false;
    this.holdUntil = 0;        // reconnection held off until (simulated network drop)
    this.muted = false;
    this.held = false;
    this.instanceId = Math.random().toString(36).slice(2);
    this.channel = null;
    this.q = (sel) => root.querySelector(sel);
    this.wire();
  }

  // ----- UI -------------------------------------------------------------
  wire() {
    this.q("#phone-enable").addEventListener("click", () => { localStorage.setItem(ENABLED_KEY, "1"); this.start(); });
    this.q("#phone-disable").addEventListener("click", () => { localStorage.removeItem(ENABLED_KEY); this.switchOff(); });
    this.q("#phone-answer").addEventListener("click", () => this.answer());
    this.q("#phone-reject").addEventListener("click", () => this.reject());
    this.q("#phone-hangup").addEventListener("click", () => this.hangup());
    this.q("#phone-mute").addEventListener("click", () => this.setMuted(!this.muted));
    this.q("#phone-hold").addEventListener("click", () => this.setHeld(!this.held));
    this.q("#phone-dtmf").addEventListener("click", (e) => {
      const key = e.target.closest("button[data-key]");
      if (key) this.dtmf(key.dataset.key);
    });
    this.q("#phone-speaker").addEventListener("change", () => this.applySpeaker());
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", () => this.listDevices());
    }
  }

  showReg(state, detail) {
    const n = this.q("#phone-reg");
    n.dataset.state = state;
    n.textContent = REG_TEXT[state] || state;
    n.title = detail || "";
  }

  showProblem(message) {
    const p = this.q("#phone-problem");
    p.textContent = message || "";
    p.hidden = !message;
  }

  showCall(kind, caller, queue) {
    this.root.dataset.call = kind;
    this.q("#phone-incoming").hidden = kind !== "ringing";
    this.q("#phone-active").hidden = !(kind === "active" || kind === "held");
    if (caller !== undefined) {
      this.q("#phone-caller").textContent = caller;
      this.q("#phone-peer").textContent = caller;
    }
    if (queue !== undefined) this.q("#phone-queue").textContent = queue ? `(queue ${queue})` : "";
    this.q("#phone-call-state").textContent = kind === "held" ? "(on hold)" : "";
  }

  async listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [sel, kind] of [["#phone-mic", "audioinput"], ["#phone-speaker", "audiooutput"]]) {
      const select = this.q(sel);
      const keep = select.value;
      select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) =>
        node("option", { value: d.deviceId, text: d.label || `${kind === "audioinput" ? "Microphone" : "Speaker"} ${i + 1}` })));
      if (keep) select.value = keep;
    }
    this.q("#phone-speaker").disabled = !("setSinkId" in HTMLMediaElement.prototype);
  }

  applySpeaker() {
    const audio = this.q("#phone-audio");
    const id = this.q("#phone-speaker").value;
    if (id && audio.setSinkId) audio.setSinkId(id).catch((e) => this.showProblem(`Cannot use that speaker: ${e.message}`));
  }

  // ----- registration ---------------------------------------------------
  async start() {
    this.stopping = false;
    this.announce();
    this.q("#phone-enable").hidden = true;
    this.q("#phone-disable").hidden = false;
    this.showReg("connecting");
    this.listDevices().catch(() => {});
    let cfg;
    try {
      cfg = await this.session.get(`/api/agents/${encodeURIComponent(this.session.agentId)}/phone/config`);
    } catch (err) {
      this.showReg("disabled");
      this.showProblem(`The browser phone is not available: ${err.message || err}`);
      this.q("#phone-enable").hidden = false;
      this.q("#phone-disable").hidden = true;
      return;
    }
    if (this.stopping) return;
    this.connect(cfg);
  }

  connect(cfg) {
    this.cfg = cfg;
    this.showReg("connecting");
    this.ua = new UserAgent({
      uri: UserAgent.makeURI(cfg.sip_uri),
      authorizationUsername: cfg.username,
      authorizationPassword: cfg.password,
      displayName: cfg.display_name,
      transportOptions: { server: cfg.ws_url, connectionTimeout: 5 },
      sessionDescriptionHandlerFactoryOptions: {
        peerConnectionConfiguration: { iceServers: cfg.ice_servers || [] },
        iceGatheringTimeout: 1000,
      },
      logBuiltinEnabled: true, logLevel: "warn",
      userAgentString: "callcenter-browser-phone",
    });
    const ua = this.ua;  // a replaced user agent's late callbacks are ignored
    ua.delegate = {
      onConnect: () => { if (this.ua === ua) { this.attempt = 0; this.register(); } },
      onDisconnect: (error) => { if (this.ua === ua) this.onDisconnect(error); },
      onInvite: (invitation) => { if (this.ua === ua) this.onInvite(invitation); },
    };
    this.registerer = new Registerer(this.ua, { expires: cfg.register_expires || 120 });
    this.registerer.stateChange.addListener((state) => {
      if (state === RegistererState.Registered) {
        this.refusals = 0;
        this.showReg("registered");
        this.showProblem(null);
      } else if (state === RegistererState.Unregistered && this.q("#phone-reg").dataset.state === "registered") {
        this.showReg("unregistered");
      }
    });
    this.ua.start().catch((err) => this.onDisconnect(err));
  }

  register() {
    if (!this.registerer) return;
    this.registerer.register({
      requestDelegate: {
        onAccept: () => { this.refusals = 0; this.showReg("registered"); this.showProblem(null); },
        onReject: (response) => this.onRefused(response.message),
      },
    }).catch((err) => this.showProblem(`Registration failed: ${err.message || err}`));
  }

  async onRefused(message) {
    const code = message.statusCode;
    const why = `${code} ${message.reasonPhrase || ""}`.trim();
    this.refusals += 1;
    if ((code === 401 || code === 403 || code === 407) && this.refusals === 1) {
      // Rotated meanwhile? Fetch the service's current credentials once and try again.
      this.showReg("connecting", why);
      await this.teardown();
      if (!this.stopping) this.start();
      return;
    }
    this.showReg("refused", why);
    this.showProblem(code === 401 || code === 403 || code === 407
      ? `FreeSWITCH refused the phone's credentials (${why}): they are wrong or expired, or the switch has not loaded them yet. Ask an administrator to rotate them (POST /api/agents/<id>/phone/credentials) or to check FREESWITCH_DIRECTORY_DIR.`
      : `FreeSWITCH refused the registration (${why}).`);
  }

  // One phone per agent, the newest wins: a tab turning the phone on tells the agent's
  // other tabs of this browser, which switch theirs off (and the service drops the
  // user's older registrations at FreeSWITCH when it hands out the config).
  announce() {
    if (!this.channel && typeof BroadcastChannel === "function") {
      this.channel = new BroadcastChannel("cc-phone");
      this.channel.onmessage = (e) => {
        const m = e.data || {};
        if (m.type === "on" && m.agent === this.session.agentId && m.id !== this.instanceId && !this.stopping) this.takenOver();
      };
    }
    if (this.channel) this.channel.postMessage({ type: "on", agent: this.session.agentId, id: this.instanceId });
  }

  async takenOver() {
    if (this.call) this.hangup();
    this.stopping = true;
    await this.teardown(false);
    this.showReg("off");
    this.showProblem("This browser is no longer your phone: it was turned on in another tab (the newest one rings). Turn it on here again to take it back.");
    this.q("#phone-enable").hidden = false;
    this.q("#phone-disable").hidden = true;
  }

  onDisconnect(error) {
    if (this.stopping) return;
    this.showReg("offline", error ? String(error.message || error) : "");
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const wait = Math.max(base, this.holdUntil - Date.now());
    this.attempt += 1;
    this.showProblem(`The connection to the phone server dropped; trying again in ${Math.round(wait / 1000)} s. You are paused meanwhile.`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopping && this.ua) this.ua.reconnect().catch((err) => this.onDisconnect(err));
    }, wait);
  }

  // Support and tests: drop the WebSocket as a network failure would, and hold the
  // reconnection off for holdMs.
  simulateNetworkDrop(holdMs = 0) {
    this.holdUntil = Date.now() + holdMs;
    const transport = this.ua && this.ua.transport;
    const ws = transport && (transport._ws || transport.ws);
    if (ws) ws.close();
  }

  // ----- calls ----------------------------------------------------------
  async onInvite(invitation) {
    if (this.call) {
      invitation.reject({ statusCode: 486 }).catch(() => {});
      return;
    }
    this.call = invitation;
    const id = invitation.remoteIdentity;
    const header = (name) => invitation.request.getHeader(name) || "";
    const caller = (id.displayName && id.displayName !== id.uri.user ? `${id.displayName} ` : "") + id.uri.user;
    this.showCall("ringing", header("X-CC-Customer") || caller, header("X-CC-Queue"));
    invitation.stateChange.addListener((state) => this.onCallState(invitation, state));
    this.describeCall();
  }

  // The service knows which call is ringing the agent: its customer number and queue.
  async describeCall() {
    try {
      const agent = await this.session.get(`/api/agents/${encodeURIComponent(this.session.agentId)}`);
      if (!agent.call_id || !this.call) return;
      const call = await this.session.get(`/api/calls/${agent.call_id}`);
      const customer = call.direction === "inbound" ? call.from : call.to;
      const queue = call.queue || call.queue_id || (call.metadata && call.metadata.queue) || "";
      if (this.call) this.showCall(this.root.dataset.call, customer || undefined, queue);
    } catch { /* the SIP caller id stays */ }
  }

  onCallState(invitation, state) {
    if (invitation !== this.call) return;
    if (state === SessionState.Established) {
      this.showCall("active");
      this.attachAudio(invitation);
    } else if (state === SessionState.Terminated) {
      this.call = null;
      this.muted = false;
      this.held = false;
      this.q("#phone-mute").setAttribute("aria-pressed", "false");
      this.q("#phone-hold").setAttribute("aria-pressed", "false");
      this.q("#phone-audio").srcObject = null;
      this.showCall("idle");
    }
  }

  attachAudio(invitation) {
    const pc = invitation.sessionDescriptionHandler && invitation.sessionDescriptionHandler.peerConnection;
    if (!pc) return;
    const stream = new MediaStream();
    for (const receiver of pc.getReceivers()) if (receiver.track) stream.addTrack(receiver.track);
    const audio = this.q("#phone-audio");
    audio.srcObject = stream;
    this.applySpeaker();
    audio.play().catch(() => {});
    this.listDevices().catch(() => {});  // labels are known once the microphone is in use
  }

  answer() {
    if (!this.call || this.call.state !== SessionState.Initial) return;
    const mic = this.q("#phone-mic").value;
    const audio = mic ? { deviceId: { exact: mic } } : true;
    this.call.accept({ sessionDescriptionHandlerOptions: { constraints: { audio, video: false } } })
      .catch((err) => this.showProblem(`Cannot answer: ${err.message || err}`));
  }

  reject() {
    if (this.call && this.call.state === SessionState.Initial) this.call.reject({ statusCode: 603 }).catch(() => {});
  }

  hangup() {
    if (!this.call) return;
    if (this.call.state === SessionState.Initial) this.reject();
    else if (this.call.state === SessionState.Established) this.call.bye().catch(() => {});
  }

  setMuted(muted) {
    const pc = this.call && this.call.sessionDescriptionHandler && this.call.sessionDescriptionHandler.peerConnection;
    if (!pc) return;
    for (const sender of pc.getSenders()) if (sender.track) sender.track.enabled = !muted;
    this.muted = muted;
    this.q("#phone-mute").setAttribute("aria-pressed", String(muted));
  }

  setHeld(held) {
    if (!this.call || this.call.state !== SessionState.Established) return;
    const options = { sessionDescriptionHandlerOptions: { hold: held } };
    this.call.sessionDescriptionHandlerOptionsReInvite = options.sessionDescriptionHandlerOptions;
    this.call.invite({
      ...options,
      requestDelegate: {
        onAccept: () => {
          this.held = held;
          this.q("#phone-hold").setAttribute("aria-pressed", String(held));
          this.showCall(held ? "held" : "active");
        },
        onReject: (r) => this.showProblem(`Hold refused (${r.message.statusCode})`),
      },
    }).catch((err) => this.showProblem(`Hold failed: ${err.message || err}`));
  }

  dtmf(key) {
    const sdh = this.call && this.call.sessionDescriptionHandler;
    if (!sdh || this.call.state !== SessionState.Established) return;
    if (!sdh.sendDtmf(key)) this.showProblem("Tones cannot be sent on this call");
  }

  // ----- end ------------------------------------------------------------
  async teardown(unregister = true) {
    clearTimeout(this.retryTimer);
    const ua = this.ua;
    this.ua = null;
    if (!ua) return;
    try { if (unregister && this.registerer) await this.registerer.unregister(); } catch { /* gone anyway */ }
    this.registerer = null;
    try { await ua.stop(); } catch { /* gone anyway */ }
  }

  async switchOff() {
    this.stopping = true;
    if (this.call) this.hangup();
    await this.teardown();
    this.showReg("off");
    this.showProblem(null);
    this.q("#phone-enable").hidden = false;
    this.q("#phone-disable").hidden = true;
  }

  async stop() {
    this.stopping = true;
    if (this.channel) this.channel.close();
    if (this.call) this.hangup();
    await this.teardown();
    this.root.remove();
  }
}

export function mountPhone(container, session) {
  ensureStyles();
  const root = buildUi();
  container.append(root);
  const phone = new Phone(root, session);
  window.ccPhone = phone;  // for support (console) and the browser tests
  if (localStorage.getItem(ENABLED_KEY)) phone.start();
  return phone;
}
