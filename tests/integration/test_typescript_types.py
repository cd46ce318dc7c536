"""TypeScript types generated from the spec compile against a program calling every operation.

clients/ts pins openapi-typescript and typescript (package.json + package-lock.json);
`make test` installs them first (`make ts-tools`: npm ci, the only step that needs the
registry; the test itself never leaves 127.0.0.1). The types come from the app's
own /api/openapi.json, and `tsc --noEmit` checks clients/ts/check.ts against them: every
operation is called with a request its types accept (Idempotency-Key included), and a
request they refuse (an unknown enum value) fails the build.
"""
import os
import shutil
import subprocess
import sys

import pytest

from app import create_app
from tests.conftest import ROOT

TS_DIR = os.path.join(ROOT, "clients", "ts")
BIN = os.path.join(TS_DIR, "node_modules", ".bin")


def npm_tools():
    """The pinned tools' directory; skipped (failed in CI) when `make ts-tools` did not run."""
    if os.path.exists(os.path.join(BIN, "tsc")) and os.path.exists(
            os.path.join(BIN, "openapi-typescript")):
        return BIN
    reason = ("clients/ts/node_modules is missing: `make ts-tools` installs the pinned "
              "openapi-typescript and typescript (needs node/npm, which .ci/run installs)")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def types_dir(redis_server, tmp_path_factory):
    """A copy of check.ts and tsconfig.json beside api.d.ts generated from the app's spec
    (the spec does not depend on the database: one SQLite run is enough)."""
    tools = npm_tools()
    work = tmp_path_factory.mktemp("ts")
    db_url = f"sqlite:///{work / 'spec.db'}"
    subprocess.run([sys.executable, "-m", "models.migrate"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, timeout=60)
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url})
    (work / "openapi.json").write_bytes(app.test_client().get("/api/openapi.json").data)
    for name in ("check.ts", "tsconfig.json"):
        shutil.copy(os.path.join(TS_DIR, name), work / name)
    run = subprocess.run(
        [os.path.join(tools, "openapi-typescript"), "openapi.json", "-o", "api.d.ts",
         "--default-non-nullable", "false"],
        cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return work


def tsc(work):
    return subprocess.run([os.path.join(BIN, "tsc"), "-p", "tsconfig.json"], cwd=work,
                          capture_output=True, text=True, timeout=180, check=False)


def test_a_program_calling_every_operation_type_checks(types_dir):
    run = tsc(types_dir)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_types_refuse_what_the_api_refuses(types_dir):
    check = (types_dir / "check.ts").read_text()
    assert 'body: { reason: "lunch" }' in check
    (types_dir / "check.ts").write_text(check.replace('reason: "lunch"', 'reason: "nap"'))
    try:
        run = tsc(types_dir)
    finally:
        (types_dir / "check.ts").write_text(check)
    assert run.returncode != 0 and "check.ts" in run.stdout and '"nap"' in run.stdout, \
        run.stdout + run.stderr
