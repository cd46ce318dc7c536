"""API keys: who may call the API, stored as SHA-256 hashes, never in plain text."""
import peewee

from models.db import BaseModel, new_id, utcnow


class ApiKey(BaseModel):
    """One API key. The key itself is shown once at creation and never stored.

    `prefix` is the first few characters of the key, kept so that an operator
    can tell keys apart in `flask api-keys list`; it is too short to guess the
    rest from. Revoked keys stay (with `revoked_at`) so their names are not
    reused by accident and the audit trail keeps meaning.
    """

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    name = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)
    key_hash = peewee.CharField(max_length=64, unique=True)
    role = peewee.CharField(max_length=16)
    agent_id = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    revoked_at = peewee.DateTimeField(null=True)

    @property
    def active(self):
        return self.revoked_at is None


MODELS = [ApiKey]
