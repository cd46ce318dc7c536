"""gunicorn reads this file from the working directory on its own (`web` in the Procfile).

It makes the Prometheus figures of the web workers multiprocess-safe: every worker
writes its counters into PROMETHEUS_MULTIPROC_DIR and `/metrics`, whichever worker
answers, adds them all up. Set PROMETHEUS_MULTIPROC_DIR to choose the folder (it is
emptied when gunicorn starts: one folder per gunicorn, never shared by two); unset, a
new temporary folder is made for this gunicorn and removed when it exits. The
command-line flags of the Procfile still decide everything else.
"""
import glob
import os
import shutil
import tempfile

_MADE = "CALLCENTER_METRICS_DIR_MADE"  # this gunicorn made the folder (remove it at exit)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before any worker imports prometheus_client: it picks its storage on import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_MADE] = tempfile.mkdtemp(
        prefix="callcenter-metrics-")


def on_starting(server):
    """The master, before the first worker: drop the figures of an earlier gunicorn."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for path in glob.glob(os.path.join(folder, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A worker is gone: its live gauges stop counting (its counters keep their totals)."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(_MADE) == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(os.environ[_MADE], ignore_errors=True)
