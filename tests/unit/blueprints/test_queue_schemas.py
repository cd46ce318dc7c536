"""The queue and inbound-route request schemas: what a client sends becomes what the
service stores (actions always carry a target key, hours come out normalised), and every
malformed piece is refused naming the field."""
import pytest
from marshmallow import ValidationError

from blueprints.inbound_routes.schemas import InboundRouteCreateSchema, InboundRouteUpdateSchema
from blueprints.queues.schemas import QueueCreateSchema, QueueUpdateSchema


def test_defaults_and_normalised_values():
    loaded = QueueCreateSchema().load({
        "id": "support", "name": "Support", "closed_action": {"action": "hangup"},
        "max_wait_action": {"action": "number", "target": "+15550001111"},
        "hours": {"timezone": "Europe/Paris", "days": {"tue": [["13:00", "17:00"],
                                                               ["09:00", "12:00"]]}},
        "members": [{"agent_id": "ann"}]})
    assert loaded["strategy"] == "longest-idle-agent"
    assert loaded["closed_action"] == {"action": "hangup", "target": None}
    assert loaded["max_wait_action"] == {"action": "number", "target": "+15550001111"}
    assert loaded["hours"] == {"timezone": "Europe/Paris", "closed_dates": [],
                               "days": {"tue": [["09:00", "12:00"], ["13:00", "17:00"]]}}
    assert loaded["members"] == [{"agent_id": "ann", "tier": 1}]
    # an update names only what changes; null clears
    assert QueueUpdateSchema().load({"hours": None, "max_wait_seconds": None}) == {
        "hours": None, "max_wait_seconds": None}


@pytest.mark.parametrize("body, field, words", [
    ({"closed_action": {"action": "hangup", "target": "x"}}, "closed_action", "no target"),
    ({"closed_action": {"action": "queue"}}, "closed_action", "needs a target"),
    ({"closed_action": {"action": "number", "target": "call me"}}, "closed_action", "digits"),
    ({"closed_action": {"action": "agent", "target": "a{b}"}}, "closed_action", "letters"),
    ({"closed_action": {"action": "transfer", "target": "x"}}, "closed_action", "one of"),
    ({"hours": {"timezone": "Paris"}}, "hours", "unknown time zone"),
    ({"hours": {"timezone": "UTC", "days": {"mon": [["18:00", "08:00"]]}}}, "hours",
     "never crosses midnight"),
    ({"members": [{"agent_id": "ann"}, {"agent_id": "ann", "tier": 2}]}, "members",
     "listed twice"),
    ({"strategy": "fewest-calls"}, "strategy", "one of"),
    ({"ring_timeout": 15.5}, "ring_timeout", "integer"),
    ({"ring_timeout": True}, "ring_timeout", "integer"),
])
def test_malformed_queue_fields_name_the_field(body, field, words):
    with pytest.raises(ValidationError) as err:
        QueueCreateSchema().load({"id": "q", "name": "Q", **body})
    assert field in err.value.messages
    assert words in str(err.value.messages[field])


def test_route_targets_are_checked_for_their_type():
    assert InboundRouteCreateSchema().load({"number": "+3312", "target_type": "queue",
                                            "target": "support"})["match"] == "exact"
    with pytest.raises(ValidationError) as err:
        InboundRouteCreateSchema().load({"number": "+3312", "target_type": "number",
                                         "target": "support"})
    assert "target" in err.value.messages
    # an update naming the target alone leaves the type check to the service
    assert InboundRouteUpdateSchema().load({"target": "support"}) == {"target": "support"}
    with pytest.raises(ValidationError) as err:
        InboundRouteUpdateSchema().load({"number": "+33 12"})
    assert "number" in err.value.messages
