"""The call lookups of the events process and of reconciliation."""
from models import Call, fastsql
from models.recording import Recording
from services.calls import state as cs
from services.recordings.schemas import recording_summary


def find_for_channel(call_id, fs_uuid):
    """The call a channel event belongs to: by our id (cc_call_id), else its channel; with
    its recording (the dump of every call message shows it), in one query."""
    found = calls_for_channels([call_id] if call_id else [], [fs_uuid] if fs_uuid else [])
    return next((c for c in found if call_id and c.id == call_id), None) or \
        next((c for c in found if fs_uuid and c.fs_uuid == fs_uuid), None)


def calls_for_channels(call_ids, fs_uuids):
    """The calls whose id is one of call_ids or whose channel is one of fs_uuids, each
    with its recording, in one query (the calls of a batch of channel events)."""
    found = []
    for call, recording in fastsql.select_many_with_child(
            Call, (("id", call_ids), ("fs_uuid", fs_uuids)), Recording, "call"):
        call.recording_summary = recording_summary(recording)
        found.append(call)
    return found


def find_by_job(job_uuid):
    """The call whose originate was the bgapi job job_uuid (BACKGROUND_JOB), or None."""
    return fastsql.select_one(Call, "fs_job_uuid", job_uuid) if job_uuid else None


def of_node(node, configured):
    """The clause of the calls that belong to node (configured: every node's name, in
    order): its own, and for the first node also the calls with no node (from before
    nodes existed) or with a node no longer configured. None: every call (one node)."""
    if node != configured[0]:
        return Call.node == node
    others = [n for n in configured if n != node]
    return (Call.node.is_null() | Call.node.not_in(others)) if others else None


def live_calls(where=None):
    """Every live call (those matching where, when given), as a list: rows updated while
    it is walked are not met again."""
    live = Call.status.in_(cs.LIVE)
    return list(Call.select().where(live if where is None else live & where))


def live_channels(where=None):
    """The channel uuids of the live calls (those matching where, when given)."""
    live = Call.status.in_(cs.LIVE) & Call.fs_uuid.is_null(False)
    return [c.fs_uuid for c in Call.select(Call.fs_uuid).where(
        live if where is None else live & where)]


def closed_by_reconcile(fs_uuids):
    """The calls of fs_uuids that reconciliation ended (they may be reopened)."""
    return list(Call.select().where(Call.fs_uuid.in_(fs_uuids),
                                    Call.status.in_(cs.REOPENABLE),
                                    Call.status_reason == cs.GONE_REASON))


def known_channels(fs_uuids):
    """Which of fs_uuids already belong to a call."""
    return {c.fs_uuid for c in Call.select(Call.fs_uuid).where(Call.fs_uuid.in_(fs_uuids))}
