"""The events process's retry loop leaves alone a gateway a web request is applying now.

Issue 11, item 4: after POST /api/sip/configure the log said "applied after
FreeSWITCH came back" although FreeSWITCH never went away: the retry loop took
the row the request was still applying (pending for longer than 2 s while the
request waited for FreeSWITCH) and applied it a second time.
"""
import datetime
import logging

from models import utcnow
from models.sip import SipGateway
from services.publisher import Publisher
from services.sip.applier import APPLYING
from services.sip.service import SipService


def service(redis_client, tmp_path, commands=None):
    return SipService({"SECRET_KEY": "unit-secret", "FREESWITCH_GATEWAY_DIR": str(tmp_path)},
                      Publisher(redis_client), commands=commands, redis_conn=redis_client)


def pending(name, detail, age):
    return SipGateway.create(name=name, host="127.0.0.1", port=5060, transport="udp",
                             apply_state="pending", apply_detail=detail,
                             updated_at=utcnow() - datetime.timedelta(seconds=age))


class Unreachable:
    """FreeSWITCH away: the retry loop must not get further than asking."""

    def __init__(self):
        self.asked = 0

    def ping(self):
        self.asked += 1
        return False


def test_a_gateway_being_applied_by_a_request_is_not_retried(bound_db, redis_client, tmp_path,
                                                             caplog):
    SipGateway.delete().execute()
    pending("pbx-saving", APPLYING, age=5)
    commands = Unreachable()
    with caplog.at_level(logging.INFO):
        assert service(redis_client, tmp_path, commands).apply_pending() == 0
    assert commands.asked == 0  # nothing to do: FreeSWITCH not even asked
    assert SipGateway.get(SipGateway.name == "pbx-saving").apply_detail == APPLYING
    assert "came back" not in caplog.text


def test_a_gateway_left_pending_while_freeswitch_was_away_is_retried(bound_db, redis_client,
                                                                    tmp_path):
    SipGateway.delete().execute()
    pending("pbx-away", "FreeSWITCH is unreachable: the gateway file is written", age=5)
    pending("pbx-abandoned", APPLYING, age=120)  # its request died long ago
    commands = Unreachable()
    assert service(redis_client, tmp_path, commands).apply_pending() == 0
    assert commands.asked == 1  # there was work: FreeSWITCH was asked
