"""The transactional outbox: news (publishes, job enqueues) stored with the change it reports."""
import peewee

from models.db import BaseModel, utcnow

# What a row asks for once its transaction has committed.
PUBLISH = "publish"  # target = live channel, name = event type, payload = data
ENQUEUE = "enqueue"  # target = queue name, name = dotted job path, payload = [args]
KINDS = (PUBLISH, ENQUEUE)


class NeverReusedId(peewee.BigAutoField):
    """An id no row ever gets twice: AUTOINCREMENT on SQLite (which otherwise starts again
    after the largest id left, at 1 when the table is empty); PostgreSQL's sequence never
    reuses one. See migration 0011."""

    def ddl(self, ctx):
        node = super().ddl(ctx)
        database = self.model._meta.database
        if isinstance(getattr(database, "obj", database), peewee.SqliteDatabase):
            return peewee.NodeList((node, peewee.SQL("AUTOINCREMENT")))
        return node


class OutboxMessage(BaseModel):
    """One piece of news not yet handed to Redis; deleted once it has been.

    The id orders the rows: they are sent strictly in id order, so a row left
    behind (Redis was down, the process died) goes out before newer news.
    """

    id = NeverReusedId()
    kind = peewee.CharField(max_length=16)
    target = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=255)
    payload = peewee.TextField()  # JSON, encoded by the outbox (dates as text)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "outbox_message"


MODELS = [OutboxMessage]
