"""Webhook jobs (queue "webhooks", served by the WEBHOOK_WORKERS processes of the worker).

    python -m workers.webhooks callback-secret   # the secret status callbacks are signed with

drain(target): send a webhook's (or a status callback's) due deliveries in order;
sweep(): wake targets whose retry job was lost. Both are safe to run again
(services/webhooks/dispatch.py).
"""
import sys

from config import load_config
from services.webhooks.dispatch import Dispatcher
from services.webhooks.service import callback_secret
from workers.context import current_services


def drain(target):
    """RQ job: the due deliveries of one target (a webhook id or "call:<id>")."""
    return Dispatcher(current_services()).drain(target)


def sweep():
    """RQ job (periodic): enqueue a drain for every target with due work."""
    return Dispatcher(current_services()).sweep()


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args != ["callback-secret"]:
        print("usage: python -m workers.webhooks callback-secret", file=sys.stderr)
        return 2
    print(callback_secret(load_config()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
