"""Shared fixtures: a private Mosquitto, simulated vehicles, the live service."""

import fcntl
import os

import pytest

pytest_plugins = ["tests.fixtures_mqtt", "tests.fixtures_sim", "tests.fixtures_service"]

# Scheduled patrols start on the wall clock's calendar (the district's patrols.yaml): a test run at
# 14:00 local would see one. Services under test leave them off; the patrol tests start them.
os.environ.setdefault("YINGJI_PATROLS", "false")

# Tests that load both CPUs on their own: Chromium rendering the map in software (the browser tests)
# and the six-vehicle flood exercise at 60x. The browser tests pass side by side, but the exercise's
# time-scaled simulation drifts when it shares two cores with them. A lock file shared by the xdist
# workers lets one of these run at a time. Waiting for it counts against a test's timeout, so these
# get a longer one.
SHARED_CPU = ("tests/browser/",)
EXCLUSIVE_CPU = ("tests/integration/test_flood_exercise.py",)
HEAVY_TIMEOUT_S = 900


def _cpu_lock_mode(item) -> int | None:
    # Browser tests beside one another also raced their own deadlines on a loaded machine: every
    # heavy test runs alone among the heavy ones (the lighter tests go on beside it).
    path = item.nodeid.split("::", 1)[0]
    return fcntl.LOCK_EX if path.startswith(EXCLUSIVE_CPU + SHARED_CPU) else None


def pytest_itemcollected(item) -> None:
    if _cpu_lock_mode(item) is not None and item.get_closest_marker("timeout") is None:
        item.add_marker(pytest.mark.timeout(HEAVY_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    mode = _cpu_lock_mode(item)
    if mode is None:
        yield
        return
    # the workers' base temporary folders share one parent (pytest-of-<user>/pytest-<n>/popen-gwN)
    root = item.config._tmp_path_factory.getbasetemp()
    lock_path = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "cpu-heavy.lock"
    with open(lock_path, "a+") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
