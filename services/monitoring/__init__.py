"""What operators scrape: `/metrics` in the Prometheus text format.

Two kinds of figures, gathered differently:
- per web process (HTTP requests and their latency): prometheus_client metrics, kept in
  PROMETHEUS_MULTIPROC_DIR when gunicorn runs several workers (gunicorn.conf.py sets it),
  so that any worker's answer sums every worker (http.py);
- the deployment's (events applied per node, ESL state per node, live calls per node,
  WebSocket clients, RQ queues): read at scrape time from Redis and the database, where
  the events processes, the web processes and RQ already keep them (cluster.py). The
  events processes have no HTTP server and may run on other machines than `web`, so they
  add their counts to Redis rather than to a shared directory.
"""
