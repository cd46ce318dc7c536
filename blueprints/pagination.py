"""flask-smorest pagination over peewee queries (X-Pagination header, JSON array body)."""
from flask_smorest import Page


class PeeweePage(Page):
    """Pages a peewee SelectQuery with LIMIT/OFFSET and a COUNT for the header."""

    @property
    def items(self):
        params = self.page_params
        return list(self.collection.limit(params.page_size).offset(params.first_item))

    @property
    def item_count(self):
        return self.collection.order_by().count()
