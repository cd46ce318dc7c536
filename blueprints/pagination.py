"""flask-smorest pagination over peewee queries (X-Pagination header, JSON array body)."""
from flask_smorest import Page

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
        return list(self.collection.limit(params.page_size).offset(params.first_item))

    @property
    def item_count(self):
        capped = self.collection.order_by().select(self.collection.model._meta.primary_key)
        return capped.limit(COUNT_CAP + 1).count()


class CallPage(PeeweePage):
    """Pages calls and has the service load their recordings in one query per page."""

    @property
    def items(self):
        from flask import current_app
        return current_app.extensions["services"].calls.attach_recordings(super().items)
