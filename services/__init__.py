"""Domain logic shared by the web, events and worker processes.

One package per domain (calls, recordings, sip, quality, live), each with its
service, its notifier (the only publisher on its channel) and its wire schemas;
beside them the outbox (news stored with the change and sent after the commit),
the envelope publisher, the job queues and the container that wires a process.
"""
