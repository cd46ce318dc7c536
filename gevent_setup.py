"""Make blocking database drivers cooperate with gevent (imported after monkey-patching)."""


def make_db_cooperative():
    """psycopg2 blocks the whole process on a query unless told to wait via select()."""
    try:
        import psycopg2.extensions
        import psycopg2.extras
    except ImportError:
        return
    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
