"""peewee models and the database set-up; `ALL_MODELS` is what create_tables makes."""
# ruff: noqa: I001  (order matters: the domain models import models.call)
from models.db import BaseModel, db, init_db, is_sqlite, make_database, new_id, utcnow  # noqa: F401
from models.call import Call, CallEvent  # noqa: F401
from models import fastsql  # noqa: F401
from models import recording as _recording, sip as _sip, quality as _quality, auth as _auth

ALL_MODELS = [Call, CallEvent] + _recording.MODELS + _sip.MODELS + _quality.MODELS + _auth.MODELS


def create_tables():
    """Create missing tables and indexes; safe to run any number of times."""
    db.create_tables(ALL_MODELS, safe=True)
