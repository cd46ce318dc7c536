"""The /ws WebSocket route (issue: live channels)."""


def register(app, sock):
    """Attach /ws to the app (filled in by the live-channels work)."""
    return None
