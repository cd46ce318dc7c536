"""The call lookups of the events process and of reconciliation."""
from models import Call
from services.calls import state as cs


def find_for_channel(call_id, fs_uuid):
    """The call a channel event belongs to: by our id (cc_call_id), else its channel."""
    if call_id:
        call = Call.find_by("id", call_id)
        if call is not None:
            return call
    return Call.find_by("fs_uuid", fs_uuid) if fs_uuid else None


def find_by_job(job_uuid):
    return Call.get_or_none(Call.fs_job_uuid == job_uuid)


def live_calls():
    """Every live call, as a list: rows updated while it is walked are not met again."""
    return list(Call.select().where(Call.status.in_(cs.LIVE)))


def live_channels():
    """The channel uuids of the live calls."""
    return [c.fs_uuid for c in Call.select(Call.fs_uuid).where(
        Call.status.in_(cs.LIVE) & Call.fs_uuid.is_null(False))]


def closed_by_reconcile(fs_uuids):
    """The calls of fs_uuids that reconciliation ended (they may be reopened)."""
    return list(Call.select().where(Call.fs_uuid.in_(fs_uuids),
                                    Call.status.in_(cs.REOPENABLE),
                                    Call.status_reason == cs.GONE_REASON))


def known_channels(fs_uuids):
    """Which of fs_uuids already belong to a call."""
    return {c.fs_uuid for c in Call.select(Call.fs_uuid).where(Call.fs_uuid.in_(fs_uuids))}
