"""Shared fixtures: the real labelled data in ../shared, a quiet Prefect test harness, Redis."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Quiet, offline, isolated Prefect settings; must be set before prefect is imported.
_PREFECT_HOME = tempfile.mkdtemp(prefix="distill-audit-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", os.path.join(_PREFECT_HOME, "results"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_ROOT = Path(os.environ.get("DISTILL_AUDIT_SHARED", PROJECT_ROOT.parent / "shared"))
SHARED_DATA = SHARED_ROOT / "data"
DEV_DIR = SHARED_DATA / "dev"
FIXTURES_DIR = SHARED_DATA / "fixtures"

requires_shared = pytest.mark.skipif(
    not DEV_DIR.is_dir(),
    reason=f"real labelled data not found at {SHARED_DATA} (set DISTILL_AUDIT_SHARED to its parent)",
)


def load_dev(label: str) -> list[dict]:
    """All dev records of one label ('openai', 'other_llm' or 'human'), in file order."""
    path = DEV_DIR / f"{label}.jsonl"
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def dev_openai() -> list[dict]:
    if not DEV_DIR.is_dir():
        pytest.skip(f"real labelled data not found at {SHARED_DATA}")
    return load_dev("openai")


@pytest.fixture(scope="session")
def dev_human() -> list[dict]:
    if not DEV_DIR.is_dir():
        pytest.skip(f"real labelled data not found at {SHARED_DATA}")
    return load_dev("human")


@pytest.fixture(scope="session")
def dev_other_llm() -> list[dict]:
    if not DEV_DIR.is_dir():
        pytest.skip(f"real labelled data not found at {SHARED_DATA}")
    return load_dev("other_llm")


@pytest.fixture(scope="session")
def warc_fixtures() -> list[Path]:
    if not FIXTURES_DIR.is_dir():
        pytest.skip(f"real WARC fixtures not found at {FIXTURES_DIR}")
    return sorted(p for p in FIXTURES_DIR.iterdir() if ".warc" in p.name)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session, heartbeat join switched off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), temporary_settings(
        updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_binary() -> str:
    """redis-server's path; skips when it is not installed, unless DISTILL_AUDIT_REQUIRE_REDIS is
    set (as in CI), where a missing server is a failure."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("DISTILL_AUDIT_REQUIRE_REDIS"):
            pytest.fail("DISTILL_AUDIT_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server not installed (apt-get install redis-server); .ci/run installs it")
    return binary


@contextlib.contextmanager
def _private_redis(*extra_args: str) -> Iterator[int]:
    """A private redis-server on 127.0.0.1 (nothing saved), stopped at exit; yields its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         *extra_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start within 20 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis on 127.0.0.1: the one .ci/run started, or a private one started here.

    Skips when no redis-server is installed, unless DISTILL_AUDIT_REQUIRE_REDIS is set
    (as in CI), where a missing server is a failure.
    """
    url = os.environ.get("DISTILL_AUDIT_TEST_REDIS_URL")
    if url:
        yield url
        return
    with _private_redis() as port:
        yield f"redis://127.0.0.1:{port}/0"


#: The password of :func:`redis_password_url`'s server.
REDIS_TEST_PASSWORD = "s3cret-hunter2"


@pytest.fixture(scope="session")
def redis_password_url() -> Iterator[str]:
    """A private Redis that answers only with a password (``requirepass``), and its URL holding it."""
    with _private_redis("--requirepass", REDIS_TEST_PASSWORD) as port:
        yield f"redis://:{REDIS_TEST_PASSWORD}@127.0.0.1:{port}/0"
