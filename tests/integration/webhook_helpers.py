"""A real HTTP receiver for webhook tests: a gevent WSGI server on 127.0.0.1."""
import json
import time

import gevent
import gevent.event
from gevent.pywsgi import WSGIServer


class Receiver:
    """Records every request (headers, body, the status it answered).

    answer(n) gives the status for the n-th request (0-based); hold, when set, is an
    Event each request waits for before answering (a slow receiver).
    """

    def __init__(self, answer=None, hold=None):
        self.answer = answer or (lambda n: 200)
        self.hold = hold
        self.requests = []
        self.in_flight = 0
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read().decode("utf-8")
        headers = {key[5:].replace("_", "-").lower(): value
                   for key, value in environ.items() if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.in_flight += 1
        try:
            if self.hold is not None:
                self.hold.wait()
            status = self.answer(len(self.requests))
            self.requests.append({"headers": headers, "body": body, "status": status,
                                  "at": time.time(), "envelope": json.loads(body)})
        finally:
            self.in_flight -= 1
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b"ok"]

    def accepted(self):
        """Requests answered 2xx."""
        return [r for r in self.requests if 200 <= r["status"] < 300]

    def accepted_for_call(self, call_id):
        return [r for r in self.accepted() if r["envelope"]["data"].get("id") == call_id]

    def stop(self):
        if self.hold is not None:
            self.hold.set()
        gevent.sleep(0)
        self.server.stop(timeout=1)


# The fan-out reloads its webhook list at most this often (services/webhooks/fanout.py):
# a webhook created now matches messages published after it.
REFRESH_WAIT = 1.3
