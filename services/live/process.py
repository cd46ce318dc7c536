"""This process as live messages name it: its id, its memory, and the timestamp they carry."""
import datetime
import os
import socket

import psutil


def process_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def rss_mb(process=None):
    return round((process or psutil.Process()).memory_info().rss / (1024 * 1024), 1)
