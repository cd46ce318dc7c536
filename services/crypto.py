"""SecretBox: encrypts secrets kept in the database (SIP passwords), keyed from SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with its key derived
by HKDF-SHA256 from SECRET_KEY and a purpose label, so that the same
SECRET_KEY never yields the same key for two purposes (token signing uses it
directly). HKDF, not PBKDF2: SECRET_KEY is meant to be a long random value,
and a slow KDF would only cost every request that needs a password.

Changing SECRET_KEY makes stored secrets unreadable (`SecretUnreadable`); the
operator re-enters them (PUT /api/sip/credentials). Neither the plain text nor
the key is ever logged or put into an exception message.
"""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Fixed, public: HKDF's salt only separates this application's keys from
# another's; the secret part is SECRET_KEY.
_SALT = b"callcenter/secret-box/v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (SECRET_KEY changed, or the value was tampered with)."""


def derive_key(secret_key, purpose):
    """The urlsafe-base64 Fernet key for one purpose, derived from SECRET_KEY."""
    if not secret_key:
        raise ValueError("SECRET_KEY is empty; refusing to derive an encryption key")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                info=f"purpose:{purpose}".encode())
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8")))


class SecretBox:
    """Encrypts and decrypts short text secrets (str in, str token out)."""

    def __init__(self, secret_key, purpose="sip-gateway-password"):
        self._fernet = Fernet(derive_key(secret_key, purpose))

    def __repr__(self):  # never show key material, even in a debugger or a traceback
        return "<SecretBox>"

    def encrypt(self, plaintext):
        """The Fernet token (ASCII text) of plaintext; None stays None."""
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token):
        """The plain text of a token made by encrypt(); None stays None."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretUnreadable("stored secret cannot be decrypted with the current "
                                   "SECRET_KEY") from None
