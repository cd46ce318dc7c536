"""A Python client generated from the running service's own spec drives a whole call.

openapi-python-client (pinned in requirements-dev.txt) generates the client from
/api/openapi.json with no warning and no configuration; every result below is the typed
model the contract promises (never a raw response or an Error where success is due):
start and its idempotent retry, poll to in-progress, update with notes and a quality
sample, record start/stop, the recording downloaded as bytes, end, the history paged by
cursor through its Link header, statistics, SIP configure/settings/test, a webhook, delete.
Every live message those flows publish validates against /api/asyncapi.json.
"""
import importlib
import os
import subprocess
import sys
import uuid
import warnings
from urllib.parse import parse_qs, urlparse

import jsonschema_rs
import pytest
import requests

from services.publisher import CHANNELS
from tests.conftest import ChannelRecorder, wait_until

PACKAGE = "callcenter_client"
OPEN = {"RECORDING_STEREO": "false", "TRANSCRIPTION_ENABLED": "false",
        "WEBHOOK_ALLOW_PRIVATE": "true", "DEFAULT_GATEWAY": "gw1"}


@pytest.fixture(scope="module")
def client_stack(stack_factory, db_url, sim):
    stack = stack_factory(db_url, sim, worker=True, SIP_RECORDING_PATH=sim.recordings_root,
                          **OPEN)
    yield stack
    stack.stop()


def generate(spec_url, out_dir):
    """Generate the client package into out_dir; the generator's output, for its warnings."""
    spec_path = os.path.join(out_dir, "openapi.json")
    with open(spec_path, "wb") as fh:
        fh.write(requests.get(spec_url, timeout=10).content)
    bin_dir = os.path.dirname(sys.executable)
    run = subprocess.run(
        [os.path.join(bin_dir, "openapi-python-client"), "generate", "--path", spec_path,
         "--output-path", os.path.join(out_dir, PACKAGE), "--meta", "none", "--overwrite"],
        capture_output=True, text=True, timeout=180, cwd=out_dir, check=False,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def live(redis_server):
    """Every live channel's messages while this module's flows run."""
    recorder = ChannelRecorder(redis_server.url, CHANNELS)
    wait_until(lambda: True, 0.2)
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def gen(client_stack, live, tmp_path_factory):
    """The generated package, imported, and a client authenticated with the stack's key."""
    out_dir = str(tmp_path_factory.mktemp("generated"))
    output = generate(client_stack.url("/api/openapi.json"), out_dir)
    assert "Warning" not in output and "Error" not in output, output
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # the other database's run imported its own copy
    sys.path.insert(0, out_dir)
    try:
        package = importlib.import_module(PACKAGE)
        client = package.AuthenticatedClient(base_url=client_stack.base_url,
                                             token=client_stack.api_key,
                                             raise_on_unexpected_status=True, timeout=20)
        yield package, client
    finally:
        sys.path.remove(out_dir)


def models():
    return importlib.import_module(f"{PACKAGE}.models")


def test_generated_client_drives_a_whole_call(gen, sim):
    _, client = gen
    m = models()
    call_ops = {name: importlib.import_module(f"{PACKAGE}.api.calls.{name}")
                  for name in ("start_call", "get_call", "update_call", "end_call",
                               "delete_call", "list_call_history")}
    rec_ops = {name: importlib.import_module(f"{PACKAGE}.api.recordings.{name}")
               for name in ("start_recording", "stop_recording", "list_recordings",
                            "download_recording")}
    campaign = f"gen-{uuid.uuid4().hex[:6]}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the generated code must not warn either
        call = start_and_answer(client, m, call_ops, campaign)
        record(client, m, rec_ops, call)
        end_and_page(client, m, call_ops, call, campaign)


def start_and_answer(client, m, ops, campaign):
    key = f"idem-{uuid.uuid4().hex}"
    body = m.CallStart(to="15551239000", agent_id="agent-gen", campaign_id=campaign)
    first = ops["start_call"].sync_detailed(client=client, body=body, idempotency_key=key)
    assert first.status_code == 201 and isinstance(first.parsed, m.Call)
    retry = ops["start_call"].sync_detailed(client=client, body=body, idempotency_key=key)
    assert retry.status_code == 200 and isinstance(retry.parsed, m.Call)
    assert retry.parsed.id == first.parsed.id
    call_id = uuid.UUID(first.parsed.id)
    answered = wait_until(lambda: _status_is(client, ops, call_id, m.CallStatus.IN_PROGRESS),
                          15, message="the call to be answered")
    assert answered.direction == m.CallDirection.OUTBOUND
    sample = m.QualitySample(latency_ms=40.0, jitter_ms=5.0, packet_loss_pct=0.1)
    updated = ops["update_call"].sync(call_id=call_id, client=client,
                                      body=m.CallUpdate(notes="asked for a callback",
                                                        quality=sample))
    assert isinstance(updated, m.Call) and updated.notes == "asked for a callback"
    assert updated.quality.live.samples == 1 and updated.quality.live.last.latency_ms == 40.0
    return updated


def _status_is(client, ops, call_id, status):
    call = ops["get_call"].sync(call_id=call_id, client=client)
    return call if call.status == status else None


def record(client, m, ops, call):
    call_id = uuid.UUID(call.id)
    started = ops["start_recording"].sync_detailed(call_id=call_id, client=client)
    assert started.status_code == 201 and isinstance(started.parsed, m.Recording)
    assert started.parsed.status == m.RecordingStatus.RECORDING
    stopped = ops["stop_recording"].sync(call_id=call_id, client=client)
    assert isinstance(stopped, m.Recording)

    def ready():
        rows = ops["list_recordings"].sync(client=client, call_id=call_id)
        return rows[0] if rows and rows[0].status == m.RecordingStatus.READY else None
    recording = wait_until(ready, 30, message="the recording to be ready")
    audio = ops["download_recording"].sync(call_id=call_id, client=client)
    assert isinstance(audio, importlib.import_module(f"{PACKAGE}.types").File)
    data = audio.payload.read()
    assert isinstance(data, bytes) and len(data) == recording.size > 0


def end_and_page(client, m, ops, call, campaign):
    call_id = uuid.UUID(call.id)
    ended = ops["end_call"].sync(call_id=call_id, client=client, body=m.CallEnd(outcome="sale"))
    assert isinstance(ended, m.Call)
    wait_until(lambda: _status_is(client, ops, call_id, m.CallStatus.COMPLETED), 15,
               message="the call to end")
    second = ops["start_call"].sync(client=client, body=m.CallStart(
        to="15551239001", campaign_id=campaign))
    assert isinstance(second, m.Call)
    seen, cursor = [], None
    for _ in range(5):
        page = ops["list_call_history"].sync_detailed(
            client=client, campaign_id=[campaign], page_size=1,
            **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200 and all(isinstance(c, m.Call) for c in page.parsed)
        seen += [c.id for c in page.parsed]
        link = page.headers.get("link")
        if not link:
            break
        assert link.endswith('rel="next"')
        cursor = parse_qs(urlparse(link[1:link.index(">")]).query)["cursor"][0]
    assert seen == [second.id, call.id]
    live = ops["list_call_history"].sync(client=client, campaign_id=[campaign], live=True)
    assert [c.id for c in live] in ([second.id], [])  # the second call may have ended
    deleted = ops["delete_call"].sync_detailed(call_id=call_id, client=client)
    assert deleted.status_code == 204
    assert ops["get_call"].sync_detailed(call_id=call_id, client=client).status_code == 404


def test_generated_client_reads_statistics_sip_and_webhooks(gen):
    _, client = gen
    m = models()
    stats = importlib.import_module(f"{PACKAGE}.api.analytics.get_call_statistics").sync(
        client=client, group_by=m.GetCallStatisticsGroupBy.AGENT)
    assert isinstance(stats, m.Statistics) and isinstance(stats.computed_from, m.ComputedFrom)
    assert stats.computed_from.totals in (m.ComputedFromTotals.ROLLUPS,
                                          m.ComputedFromTotals.FACTS)
    sip = f"{PACKAGE}.api.sip"
    name = f"gen-{uuid.uuid4().hex[:6]}"
    saved = importlib.import_module(f"{sip}.configure_sip").sync(client=client, body=(
        m.GatewayConfig(name=name, provider=m.GatewayConfigProvider.ASTERISK,
                        host="127.0.0.1", port=5090, username="agent1000",
                        password="s3cret-for-the-generated-client")))
    assert isinstance(saved, m.Gateway) and saved.password_set is True
    assert isinstance(saved.apply_state, m.GatewayApplyState)
    settings = importlib.import_module(f"{sip}.get_sip_settings").sync(client=client)
    assert name in [g.name for g in settings]
    tested = importlib.import_module(f"{sip}.test_sip").sync(client=client, body=(
        m.GatewayTest(name=name, timeout=1)))
    assert isinstance(tested, m.GatewayTestResult)
    hooks = f"{PACKAGE}.api.webhooks"
    made = importlib.import_module(f"{hooks}.create_webhook").sync(client=client, body=(
        m.WebhookCreate(url="http://127.0.0.1:9/hook",
                        event_types=[m.WebhookCreateEventTypesItem("call.ended")])))
    assert isinstance(made, m.WebhookCreated) and made.secret
    listed = importlib.import_module(f"{hooks}.list_webhooks").sync(client=client)
    assert made.id in [h.id for h in listed]
    gone = importlib.import_module(f"{hooks}.delete_webhook").sync_detailed(
        webhook_id=made.id, client=client)
    assert gone.status_code == 204


# ----- the live messages against the AsyncAPI document ---------------------------------
def json_schema(node, key=None):
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a null alternative."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if key == "properties":  # field names, not keywords
        return {name: json_schema(value) for name, value in node.items()}
    out = {k: json_schema(v, k) for k, v in node.items()
           if k not in ("nullable", "readOnly", "writeOnly", "example")}
    if node.get("nullable"):
        if "type" in out and "enum" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def test_every_live_message_validates_against_the_asyncapi_document(client_stack, live):
    document = requests.get(client_stack.url("/api/asyncapi.json"), timeout=10).json()
    assert document["asyncapi"].startswith("3.")
    schemas = json_schema(document["components"]["schemas"])
    sent = list(live.messages)
    types = {m["type"] for m in sent}
    assert {"call.initiated", "call.answered", "call.updated", "recording.ready",
            "sip.gateway_saved"} <= types, types
    for message in sent:
        channel = document["channels"][message["channel"]]
        assert message["type"] in channel["messages"], message["type"]
        payload = document["components"]["messages"][message["type"]]["payload"]
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                **json_schema(payload["schema"]), "components": {"schemas": schemas}}
        errors = [f"{e.instance_path}: {e.message}"[:300]
                  for e in jsonschema_rs.Draft202012Validator(root).iter_errors(message)]
        assert not errors, (message["type"], errors)
