// A small typed program that calls every operation of the Call Center API through the
// types openapi-typescript generates from /api/openapi.json (api.d.ts). `tsc --noEmit`
// checks it (tests/integration/test_typescript_types.py): a wrong parameter, a missing
// required field, an unknown enum value or a removed operation fails the build, and the
// `Record<keyof operations, ...>` below fails when an operation is added and not called.
import type { components, operations } from "./api";

type Ops = operations;
type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
type Body<K extends keyof Ops> = Ops[K] extends { requestBody?: infer R } ? Json<R> : never;
type Success<K extends keyof Ops> = Ops[K]["responses"] extends infer R
  ? { [S in keyof R]: S extends 200 | 201 | 202 ? Json<R[S]> : never }[keyof R]
  : never;
type Request<K extends keyof Ops> = Ops[K]["parameters"] & { body?: Body<K> };

const BASE = "http://127.0.0.1:3001";
const KEY = "cck_example";

/** One typed call: path parameters filled in, query and headers sent, JSON parsed. */
async function call<K extends keyof Ops>(
  method: string, template: string, _op: K, request: Request<K>,
): Promise<Success<K>> {
  const path = (request as { path?: Record<string, string> }).path ?? {};
  const url = new URL(template.replace(/\{(\w+)\}/g, (_, name: string) => path[name]), BASE);
  const query = (request as { query?: Record<string, unknown> }).query ?? {};
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined) url.searchParams.append(name, String(item));
    }
  }
  const headers: Record<string, string> = { Authorization: `Bearer ${KEY}`,
    ...((request as { header?: Record<string, string> }).header ?? {}) };
  const init: RequestInit = { method, headers };
  if (request.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(request.body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    const error: components["schemas"]["Error"] = await response.json();
    throw new Error(`${error.error_id}: ${error.message ?? error.status}`);
  }
  return (response.status === 204 ? undefined : await response.json()) as Success<K>;
}

const callId = "00000000-0000-4000-8000-000000000000";
const agent = { path: { agent_id: "A1" } };
const aCall = { path: { call_id: callId } };

// Every operation, each with a request its types accept.
const everyOperation: Record<keyof Ops, () => Promise<unknown>> = {
  getHealth: () => call("GET", "/api/health", "getHealth", {}),
  getHealthDetailed: () => call("GET", "/api/health/detailed", "getHealthDetailed", {}),
  createToken: () => call("POST", "/api/auth/token", "createToken", {}),
  refreshToken: () => call("POST", "/api/auth/token/refresh", "refreshToken", {}),
  getMe: () => call("GET", "/api/auth/me", "getMe", {}),
  listRecordings: () => call("GET", "/api/calls/recordings", "listRecordings",
    { query: { status: "ready", page_size: 10 } }),
  startRecording: () => call("POST", "/api/calls/{call_id}/recording/start", "startRecording",
    aCall),
  stopRecording: () => call("POST", "/api/calls/{call_id}/recording/stop", "stopRecording",
    aCall),
  getRecordingUrl: () => call("GET", "/api/calls/{call_id}/recording/url", "getRecordingUrl",
    aCall),
  downloadRecording: () => call("GET", "/api/calls/{call_id}/recording", "downloadRecording",
    { ...aCall, query: { format: "mp3" } }),
  deleteRecording: () => call("DELETE", "/api/calls/{call_id}/recording", "deleteRecording",
    aCall),
  getCallStatistics: () => call("GET", "/api/calls/statistics", "getCallStatistics",
    { query: { group_by: "agent", time_zone: "Europe/Berlin" } }),
  getCallQualityTrends: () => call("GET", "/api/calls/quality", "getCallQualityTrends", {}),
  getRealtimeMetrics: () => call("GET", "/api/calls/metrics/realtime", "getRealtimeMetrics", {}),
  startCall: async () => {
    const started = await call("POST", "/api/calls/start", "startCall",
      { header: { "Idempotency-Key": "order-1234" }, body: { to: "15551230000" } });
    const live: components["schemas"]["Call"]["status"] = started.status;
    return live === "in-progress" ? started.recording?.url : started.direction;
  },
  listCallHistory: () => call("GET", "/api/calls/history", "listCallHistory",
    { query: { status: ["ringing", "in-progress"], live: true, page_size: 50, cursor: "abc" } }),
  getCall: () => call("GET", "/api/calls/{call_id}", "getCall", aCall),
  deleteCall: () => call("DELETE", "/api/calls/{call_id}", "deleteCall", aCall),
  updateCall: () => call("PUT", "/api/calls/{call_id}/update", "updateCall", { ...aCall, body: {
    notes: "callback", quality: { latency_ms: 40, jitter_ms: 5, packet_loss_pct: 0.1 } } }),
  endCall: () => call("POST", "/api/calls/{call_id}/end", "endCall",
    { ...aCall, body: { outcome: "sale" } }),
  listCallEvents: () => call("GET", "/api/calls/{call_id}/events", "listCallEvents", aCall),
  holdCall: () => call("POST", "/api/calls/{call_id}/hold", "holdCall", aCall),
  unholdCall: () => call("POST", "/api/calls/{call_id}/unhold", "unholdCall", aCall),
  muteCall: () => call("POST", "/api/calls/{call_id}/mute", "muteCall", aCall),
  unmuteCall: () => call("POST", "/api/calls/{call_id}/unmute", "unmuteCall", aCall),
  sendCallDtmf: () => call("POST", "/api/calls/{call_id}/dtmf", "sendCallDtmf",
    { ...aCall, body: { digits: "1234#" } }),
  transferCall: () => call("POST", "/api/calls/{call_id}/transfer", "transferCall",
    { ...aCall, body: { to: "15551230001" } }),
  completeCallTransfer: () => call("POST", "/api/calls/{call_id}/transfer/complete",
    "completeCallTransfer", aCall),
  cancelCallTransfer: () => call("POST", "/api/calls/{call_id}/transfer/cancel",
    "cancelCallTransfer", aCall),
  startCallMonitor: () => call("POST", "/api/calls/{call_id}/monitor", "startCallMonitor",
    { ...aCall, body: { mode: "whisper" } }),
  changeCallMonitorMode: () => call("POST", "/api/calls/{call_id}/monitor/mode",
    "changeCallMonitorMode", { ...aCall, body: { mode: "barge" } }),
  setCallMonitorMode: () => call("PUT", "/api/calls/{call_id}/monitor/mode",
    "setCallMonitorMode", { ...aCall, body: { mode: "listen" } }),
  stopCallMonitor: () => call("POST", "/api/calls/{call_id}/monitor/stop", "stopCallMonitor",
    aCall),
  listSipProviders: () => call("GET", "/api/sip/providers", "listSipProviders", {}),
  configureSip: () => call("POST", "/api/sip/configure", "configureSip",
    { body: { name: "pbx", provider: "asterisk", host: "pbx.example.com" } }),
  getSipSettings: () => call("GET", "/api/sip/settings", "getSipSettings", {}),
  updateSipCredentials: () => call("PUT", "/api/sip/credentials", "updateSipCredentials",
    { body: { name: "pbx", password: "s3cret-pass" } }),
  getSipStatus: () => call("GET", "/api/sip/status", "getSipStatus", {}),
  testSip: () => call("POST", "/api/sip/test", "testSip", { body: { name: "pbx" } }),
  getSipGateway: () => call("GET", "/api/sip/gateways/{name}", "getSipGateway",
    { path: { name: "pbx" } }),
  deleteSipGateway: () => call("DELETE", "/api/sip/gateways/{name}", "deleteSipGateway",
    { path: { name: "pbx" } }),
  listAgents: () => call("GET", "/api/agents", "listAgents", {}),
  createAgent: () => call("POST", "/api/agents", "createAgent",
    { body: { id: "A1", name: "Ada", endpoint: "user/1001" } }),
  getAgent: () => call("GET", "/api/agents/{agent_id}", "getAgent", agent),
  updateAgent: () => call("PUT", "/api/agents/{agent_id}", "updateAgent",
    { ...agent, body: { name: "Ada L." } }),
  deleteAgent: () => call("DELETE", "/api/agents/{agent_id}", "deleteAgent", agent),
  loginAgent: () => call("POST", "/api/agents/{agent_id}/login", "loginAgent", agent),
  logoutAgent: () => call("POST", "/api/agents/{agent_id}/logout", "logoutAgent", agent),
  resumeAgent: () => call("POST", "/api/agents/{agent_id}/resume", "resumeAgent", agent),
  setAgentReady: () => call("POST", "/api/agents/{agent_id}/ready", "setAgentReady", agent),
  pauseAgent: () => call("POST", "/api/agents/{agent_id}/pause", "pauseAgent",
    { ...agent, body: { reason: "lunch" } }),
  listAgentStates: () => call("GET", "/api/agents/{agent_id}/states", "listAgentStates", agent),
  listQueues: () => call("GET", "/api/queues", "listQueues", {}),
  createQueue: () => call("POST", "/api/queues", "createQueue",
    { body: { id: "sales", name: "Sales" } }),
  getQueue: () => call("GET", "/api/queues/{queue_id}", "getQueue", { path: { queue_id: "sales" } }),
  updateQueue: () => call("PUT", "/api/queues/{queue_id}", "updateQueue",
    { path: { queue_id: "sales" }, body: { name: "Sales EU" } }),
  deleteQueue: () => call("DELETE", "/api/queues/{queue_id}", "deleteQueue",
    { path: { queue_id: "sales" } }),
  listQueueCallers: () => call("GET", "/api/queues/{queue_id}/callers", "listQueueCallers",
    { path: { queue_id: "sales" } }),
  listInboundRoutes: () => call("GET", "/api/inbound-routes", "listInboundRoutes", {}),
  createInboundRoute: () => call("POST", "/api/inbound-routes", "createInboundRoute",
    { body: { number: "15551230000", target_type: "queue", target: "sales" } }),
  matchInboundRoute: () => call("GET", "/api/inbound-routes/match/{number}", "matchInboundRoute",
    { path: { number: "15551230000" } }),
  getInboundRoute: () => call("GET", "/api/inbound-routes/{route_id}", "getInboundRoute",
    { path: { route_id: "r1" } }),
  updateInboundRoute: () => call("PUT", "/api/inbound-routes/{route_id}", "updateInboundRoute",
    { path: { route_id: "r1" }, body: {} }),
  deleteInboundRoute: () => call("DELETE", "/api/inbound-routes/{route_id}",
    "deleteInboundRoute", { path: { route_id: "r1" } }),
  getPrometheusMetrics: () => call("GET", "/metrics", "getPrometheusMetrics", {}),
  getQueueStatistics: () => call("GET", "/api/queues/{queue_id}/statistics",
    "getQueueStatistics", { path: { queue_id: "sales" } }),
  getQueueStaffing: () => call("GET", "/api/queues/{queue_id}/staffing", "getQueueStaffing",
    { path: { queue_id: "sales" } }),
  getAgentStatistics: () => call("GET", "/api/agents/{agent_id}/statistics",
    "getAgentStatistics", agent),
  exportCalls: () => call("GET", "/api/calls/export", "exportCalls",
    { query: { format: "ndjson", status: ["completed"] } }),
  listWebhooks: () => call("GET", "/api/webhooks", "listWebhooks", {}),
  createWebhook: () => call("POST", "/api/webhooks", "createWebhook",
    { body: { url: "https://example.com/hooks", event_types: ["call.ended"] } }),
  getWebhook: () => call("GET", "/api/webhooks/{webhook_id}", "getWebhook",
    { path: { webhook_id: "w1" } }),
  updateWebhook: () => call("PUT", "/api/webhooks/{webhook_id}", "updateWebhook",
    { path: { webhook_id: "w1" }, body: { enabled: false } }),
  deleteWebhook: () => call("DELETE", "/api/webhooks/{webhook_id}", "deleteWebhook",
    { path: { webhook_id: "w1" } }),
  listWebhookDeliveries: () => call("GET", "/api/webhooks/{webhook_id}/deliveries",
    "listWebhookDeliveries", { path: { webhook_id: "w1" } }),
  redeliverWebhookDelivery: () => call("POST",
    "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", "redeliverWebhookDelivery",
    { path: { webhook_id: "w1", delivery_id: "d1" } }),
  getCallTranscript: () => call("GET", "/api/calls/{call_id}/transcript", "getCallTranscript",
    aCall),
  getTranscriptStatistics: () => call("GET", "/api/calls/transcripts/statistics",
    "getTranscriptStatistics", {}),
  getAgentPhoneConfig: () => call("GET", "/api/agents/{agent_id}/phone/config",
    "getAgentPhoneConfig", agent),
  issueAgentPhoneCredentials: () => call("POST", "/api/agents/{agent_id}/phone/credentials",
    "issueAgentPhoneCredentials", agent),
};

export default everyOperation;
