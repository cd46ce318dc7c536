"""The real FreeSWITCH of ../shared/freeswitch, for the flows the simulator could hide.

Tests that take `real_freeswitch` run against a throw-away FreeSWITCH 1.11 started by
its launcher (`fs start`, a few seconds) and are skipped, with the reason, on a clone
that has no ../shared/freeswitch (CI has it). FREESWITCH_DIST overrides the folder.
"""
import json
import os
import subprocess

import pytest

from tests.conftest import ROOT, wait_until

FS_DIST = os.environ.get("FREESWITCH_DIST") or os.path.join(os.path.dirname(ROOT), "shared",
                                                            "freeswitch")
FS_LAUNCHER = os.path.join(FS_DIST, "fs")
NO_REAL_SWITCH = (f"the real FreeSWITCH is not here ({FS_LAUNCHER} missing): these flows run "
                  "against ../shared/freeswitch when it is present, as in CI")


class RealFreeSwitch:
    """One running instance: its `fs start` JSON line as attributes, plus cli()."""

    def __init__(self, info):
        self.info = info
        self.env = info["env"]
        self.rundir = info["rundir"]

    def cli(self, command, timeout=20):
        """Run one fs_cli command and return what it printed."""
        done = subprocess.run([FS_LAUNCHER, "cli", self.rundir, "-x", command],
                              capture_output=True, text=True, timeout=timeout)
        return done.stdout

    def channels(self):
        """The uuids of the channels FreeSWITCH has now."""
        body = self.cli("show channels as json")
        try:
            rows = json.loads(body).get("rows") or []
        except ValueError:
            return set()
        return {row["uuid"] for row in rows}

    def exists(self, fs_uuid):
        """Whether FreeSWITCH has the channel now (`uuid_exists` reads the live sessions;
        `show channels` reads a table that lags the channels under load)."""
        return self.cli(f"uuid_exists {fs_uuid}").strip() == "true"


def start_real_freeswitch(rundir, *extra):
    if not os.path.exists(FS_LAUNCHER):
        pytest.skip(NO_REAL_SWITCH)
    env = dict(os.environ, FS_QUIET="1")
    done = subprocess.run([FS_LAUNCHER, "start", "--dir", str(rundir), *extra], env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"fs start failed: {done.stderr[-2000:]}")
    return RealFreeSwitch(json.loads(done.stdout.strip().splitlines()[-1]))


def stop_real_freeswitch(switch):
    subprocess.run([FS_LAUNCHER, "stop", switch.rundir, "--timeout", "0"],
                   capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def real_freeswitch(tmp_path_factory):
    """A real FreeSWITCH shared by the session's real-switch tests (skipped when absent)."""
    switch = start_real_freeswitch(tmp_path_factory.mktemp("freeswitch"))
    yield switch
    stop_real_freeswitch(switch)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, for the clean-up below."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def _calls_of_a_failed_test_ended(request):
    """A real-switch test that fails mid-call leaves its calls up (an `answer-*` or echo far
    end never hangs up), keeping the session's phones and the module's agents busy: the
    tests after it would fail too. End them, so one failure reads as one."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed or "real_freeswitch" not in request.fixturenames:
        return
    switch = request.getfixturevalue("real_freeswitch")
    if switch.channels():
        switch.cli("hupall NORMAL_CLEARING")
        wait_until(lambda: not switch.channels(), 15, 0.1, "a failed test's calls to end")
