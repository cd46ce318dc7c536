"""flask-smorest pagination over peewee queries (X-Pagination header, JSON array body), and
keyset paging for the call history: an opaque `cursor` and an RFC 8288 `Link: <...>;
rel="next"` header that carries it."""
import base64
import datetime
import json
from urllib.parse import urlencode

from flask import g, request
from flask_smorest import Page
from marshmallow import ValidationError, fields

from services.database import page_rows

LINK_DESCRIPTION = ('RFC 8288 links: `<url>; rel="next"` when a next page may exist; the '
                    "URL pages by `cursor` (keyset: stable while calls are added)")

# Counting every match of a filter over a million calls costs more than the page
# itself, so the count stops here: X-Pagination's total is exact up to COUNT_CAP
# and reads COUNT_CAP + 1 ("more than") beyond it.
COUNT_CAP = 10_000


class PeeweePage(Page):
    """Pages a peewee SelectQuery with LIMIT/OFFSET and a capped COUNT for the header."""

    # Beyond this an OFFSET does not fit the databases' integers; no data is there.
    MAX_OFFSET = 2 ** 62

    @property
    def items(self):
        params = self.page_params
        if params.first_item > self.MAX_OFFSET:
            return []
        return page_rows(self.collection.limit(params.page_size).offset(params.first_item))

    @property
    def item_count(self):
        capped = self.collection.order_by().select(self.collection.model._meta.primary_key)
        return capped.limit(COUNT_CAP + 1).count()


def encode_cursor(call):
    """The opaque position just after call in the history's order (created_at, id)."""
    raw = json.dumps([call.created_at.isoformat(), str(call.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class CursorField(fields.String):
    """A cursor from a `next` link, loaded as the (created_at, id) to continue after."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created_at, call_id = json.loads(raw)
            return datetime.datetime.fromisoformat(created_at), str(call_id)
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ValidationError("not a cursor of this API (take it from a Link header)") from None


def link_header(response):
    """after_request: the Link header a page left on g (next page by cursor)."""
    link = g.pop("next_page_link", None)
    if link and response.status_code == 200:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


class CallPage(PeeweePage):
    """Pages calls and has the service load their recordings in one query per page; with a
    `cursor` the page starts just after it (keyset) instead of at an offset."""

    @property
    def items(self):
        from flask import current_app
        if request.args.get("cursor"):
            params = self.page_params
            items = page_rows(self.collection.limit(params.page_size))
        else:
            items = super().items
        if items and len(items) == self.page_params.page_size:
            args = [(k, v) for k, v in request.args.items(multi=True)
                    if k not in ("cursor", "page")]
            args.append(("cursor", encode_cursor(items[-1])))
            g.next_page_link = f"{request.base_url}?{urlencode(args)}"
        return current_app.extensions["services"].calls.attach_recordings(items)
