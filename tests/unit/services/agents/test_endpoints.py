"""Agent endpoints: the three forms are accepted, anything that could reach into a dial
string is refused."""
import pytest

from services.agents.endpoints import dial_string, parse_endpoint


@pytest.mark.parametrize("value,text,dial", [
    ("user/1001", "user/1001", "user/1001"),
    ("user/alice.smith", "user/alice.smith", "user/alice.smith"),
    ("user/1001@pbx.example.com", "user/1001@pbx.example.com", "user/1001@pbx.example.com"),
    ("sip:bob@10.0.0.7", "sip:bob@10.0.0.7", "sofia/internal/sip:bob@10.0.0.7"),
    ("sip:+15551234@sbc.example.com:5070", "sip:+15551234@sbc.example.com:5070",
     "sofia/internal/sip:+15551234@sbc.example.com:5070"),
    ("gateway/carrier/+15551234567", "gateway/carrier/+15551234567",
     "sofia/gateway/carrier/+15551234567"),
    ({"number": "5551234", "gateway": "gw_1"}, "gateway/gw_1/5551234",
     "sofia/gateway/gw_1/5551234"),
])
def test_the_three_forms_are_accepted_and_dialled(value, text, dial):
    assert parse_endpoint(value).text == text
    assert dial_string(text) == dial


@pytest.mark.parametrize("value", [
    "", "1001", "user/", "user/10 01", "user/1001 ", " user/1001", "user/1001\n",
    "user/{origination_caller_id_number=666}1001", "user/1001,user/1002", "user/1001|user/1002",
    "user/1001:user/1002", "user/'1001'", 'user/"1001"', "user/1001;transport=tcp",
    "user/../1001", "user/1001@", "user/1001@exa mple.com", "user/1001@host,evil",
    "user/[1001]", "user/1001^1002", "user/-1001", "user/1001\t",
    "sip:bob", "sip:@host", "sip:bob@", "sip:bob@host:0", "sip:bob@host:70000",
    "sip:bob@host;transport=tcp", "sip:bob@host?x=y", "sip:b o b@host", "sip:bob@ho,st",
    "sip:bob@host:50a", "sips:bob@host",
    "gateway/gw1/", "gateway//5551234", "gateway/gw 1/5551234", "gateway/gw1/555 1234",
    "gateway/gw1/5551234,x", "gateway/gw1/5551234|x", "gateway/g/w/5551234",
    "gateway/gw1/abc", "gateway/gw1/" + "1" * 33, "sofia/gateway/gw1/5551234",
    "loopback/1000", "error/user_busy", "${var}", "u" * 300,
    {"number": "555 1234", "gateway": "gw1"}, {"number": "5551234", "gateway": "gw{1}"},
    {"number": "5551234"}, {"gateway": "gw1"}, {"number": 5551234, "gateway": "gw1"},
    {"number": "5551234", "gateway": "gw1", "extra": "x"}, 1001, None, ["user/1001"],
])
def test_anything_else_is_refused(value):
    with pytest.raises(ValueError):
        parse_endpoint(value)
