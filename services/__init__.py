"""Domain logic shared by the web, events and worker processes.

calls.py is the one call state machine and call service; notifier.py is the only
thing that publishes; outbox.py runs side effects after a commit.
"""
