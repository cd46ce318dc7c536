"""peewee models and the database set-up; the schema itself comes from models/migrations."""
# ruff: noqa: I001  (order matters: the domain models import models.call)
from models.db import BaseModel, db, init_db, is_sqlite, make_database, new_id, utcnow  # noqa: F401
from models.call import Call, CallEvent  # noqa: F401
from models import fastsql  # noqa: F401
from models import recording as _recording, sip as _sip, quality as _quality, auth as _auth
from models import outbox as _outbox
from models import agent as _agent
from models import webhook as _webhook
from models import queue as _queue
from models import queue_stats as _queue_stats
from models import transcript as _transcript
from models import agent_phone as _agent_phone
from models.migrations import SchemaOutdated, check_schema_current, upgrade  # noqa: F401

# Every table the models declare: the migrations must build exactly these
# (tests/unit/models/test_migrations.py compares them).
ALL_MODELS = ([Call, CallEvent] + _recording.MODELS + _sip.MODELS + _quality.MODELS
              + _auth.MODELS + _outbox.MODELS + _agent.MODELS + _queue.MODELS
              + _queue_stats.MODELS + _webhook.MODELS + _transcript.MODELS
              + _agent_phone.MODELS)


def migrate_database():
    """Bring the bound database to the newest schema (what `python -m models.migrate` does)."""
    return upgrade(db)


def create_tables():
    """The old name of migrate_database(), for scripts not yet renamed: runs the migrations."""
    return upgrade(db)
