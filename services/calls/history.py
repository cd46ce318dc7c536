"""Reading the call log: the filtered history, a page's recordings, a call's event trail."""
from models import Call, CallEvent, fastsql
from models.call import LIVE_STATUSES
from models.recording import Recording
from models.transcript import Transcript
from services.recordings.schemas import recording_summary


def history_query(filters):
    """The calls matching filters (status, direction, agent, campaign, gateway, dates, number)."""
    query = Call.select()
    for field in ("status", "direction", "agent_id", "campaign_id", "gateway"):
        value = filters.get(field)
        if isinstance(value, (list, tuple)):  # a repeated filter: any of its values
            query = query.where(getattr(Call, field).in_(value)) if value else query
        elif value:
            query = query.where(getattr(Call, field) == value)
    if filters.get("live") is not None:
        live = Call.status.in_(LIVE_STATUSES)
        query = query.where(live if filters["live"] else ~live)
    if filters.get("date_from"):
        query = query.where(Call.created_at >= filters["date_from"])
    if filters.get("date_to"):
        query = query.where(Call.created_at < filters["date_to"])
    if filters.get("number"):
        needle = f"%{filters['number']}%"
        query = query.where(Call.to_number ** needle | Call.from_number ** needle
                            | Call.caller_id ** needle)
    if filters.get("text"):  # words said in the call (its transcript's full-text index)
        query = query.where(Call.id.in_(Transcript.matching_calls(filters["text"])))
    ascending = filters.get("sort", "-created_at") == "created_at"
    if filters.get("cursor"):  # keyset paging: the calls after (created_at, id) in this order
        query = query.where(_after(filters["cursor"], ascending))
    if ascending:
        return query.order_by(Call.created_at.asc(), Call.id.asc())
    return query.order_by(Call.created_at.desc(), Call.id.desc())


def _after(cursor, ascending):
    """The calls past cursor (created_at, id) in the history's order, written so that an
    index on created_at (or on (filter, created_at)) seeks straight to the cursor: a range
    on created_at first, the tie on id second. The same rows as the plain
    `created_at < c OR (created_at = c AND id < i)`, which both databases could only
    answer by scanning from the first page down to the cursor."""
    created_at, call_id = cursor
    if ascending:
        return (Call.created_at >= created_at) & (
            (Call.created_at > created_at) | (Call.id > call_id))
    return (Call.created_at <= created_at) & (
        (Call.created_at < created_at) | (Call.id < call_id))


def attach_recordings(calls):
    """Load the recordings of a page of calls with one query (not one per call)."""
    ids = [call.id for call in calls]
    recordings = {r.call_id: r for r in fastsql.select_all(
        Recording.select().where(Recording.call.in_(ids)))}
    for call in calls:
        call.recording_summary = recording_summary(recordings.get(call.id))
    return calls


def trail(call):
    """The call's event trail, oldest first."""
    return list(CallEvent.select().where(CallEvent.call == call).order_by(CallEvent.id))
