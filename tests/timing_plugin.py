"""pytest plugin: the wall time each test file took (setup + call + teardown), for sharding.

Loaded by scripts/run_tests.py with `-p tests.timing_plugin`; writes
{"tests/x/test_y.py": seconds, ...} to the file named by CC_TEST_TIMES when the
session ends. Module-scoped fixtures (a running stack) count toward their file.
"""
import json
import os
from collections import defaultdict

_times = defaultdict(float)


def pytest_runtest_logreport(report):
    _times[report.nodeid.split("::", 1)[0]] += report.duration


def pytest_sessionfinish(session):
    target = os.environ.get("CC_TEST_TIMES")
    if target and _times:
        with open(target, "w", encoding="utf-8") as out:
            json.dump({name: round(seconds, 2) for name, seconds in sorted(_times.items())},
                      out, indent=0)
