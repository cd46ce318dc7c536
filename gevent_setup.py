"""Make blocking database drivers cooperate with gevent (imported after monkey-patching)."""


def make_db_cooperative():
    """psycopg2 blocks the whole process on a query unless told how to wait: here, for its
    socket through gevent's hub (psycogreen's callback; psycopg2.extras.wait_select does
    the same through the patched select(), which costs several times more per statement)."""
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        return
    psycopg2.extensions.set_wait_callback(gevent_wait_callback)


def gevent_wait_callback(conn, timeout=None):
    """Wait for psycopg2's connection the way gevent waits for a socket."""
    import psycopg2
    from gevent.socket import wait_read, wait_write
    from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE
    while True:
        state = conn.poll()
        if state == POLL_OK:
            return
        if state == POLL_READ:
            wait_read(conn.fileno(), timeout=timeout)
        elif state == POLL_WRITE:
            wait_write(conn.fileno(), timeout=timeout)
        else:
            raise psycopg2.OperationalError(f"bad result from poll: {state!r}")
