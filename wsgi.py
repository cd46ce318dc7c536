"""WSGI entry point: gevent monkey-patching first, then the app."""
from gevent import monkey

monkey.patch_all()

from gevent_setup import make_db_cooperative  # noqa: E402

make_db_cooperative()

from app import create_app  # noqa: E402

app = create_app()
