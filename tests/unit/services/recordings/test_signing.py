"""Signed recording URL tokens: what they name, when they stop working, what breaks them."""
import pytest
from itsdangerous import URLSafeSerializer

from services.errors import Forbidden
from services.recordings.signing import SALT, RecordingUrlSigner

SECRET = "unit-secret"
NOW = 1_800_000_000.0


def signer(clock=NOW, ttl=300, secret=SECRET):
    return RecordingUrlSigner(secret, ttl=ttl, clock=lambda: clock)


def refused(token, at=NOW):
    with pytest.raises(Forbidden) as caught:
        signer(at).verify(token)
    return caught.value.error_id


def test_a_token_names_its_call_recording_and_format_until_it_expires():
    token, expires_at = signer().sign("call-1", "rec-1", "ogg")
    assert expires_at.timestamp() == NOW + 300
    assert signer(NOW + 299).verify(token) == ("call-1", "rec-1", "ogg")
    assert refused(token, NOW + 300) == "recording_url_expired"
    assert signer(NOW + 299).is_valid(token) and not signer(NOW + 301).is_valid(token)


def test_the_ttl_is_the_setting():
    _, expires_at = signer(ttl=60).sign("c", "r", "mp3")
    assert expires_at.timestamp() == NOW + 60


@pytest.mark.parametrize("change", [
    lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],  # the signature
    lambda t: "x" + t,                                    # the claims
    lambda t: t.replace(".", ""),                         # no signature at all
    lambda t: "",
])
def test_an_altered_token_is_invalid_not_expired(change):
    token, _ = signer().sign("call-1", "rec-1", "mp3")
    assert refused(change(token)) == "recording_url_invalid"


def test_another_secret_or_another_salt_does_not_pass():
    token, _ = signer(secret="other").sign("call-1", "rec-1", "mp3")
    assert refused(token) == "recording_url_invalid"
    # a value the service signs with SECRET_KEY for another purpose is not a URL token
    unsalted = URLSafeSerializer(SECRET).dumps({"c": "x", "r": "y", "f": "mp3", "e": NOW + 9})
    assert refused(unsalted) == "recording_url_invalid"


def test_well_signed_claims_of_the_wrong_shape_are_invalid():
    serializer = URLSafeSerializer(SECRET, salt=SALT)
    for claims in (["c", "r"], {"c": "x", "r": "y", "f": "mp3"},
                   {"c": "x", "r": "y", "f": "mp3", "e": "never"}):
        assert refused(serializer.dumps(claims)) == "recording_url_invalid"
