"""Pre-flight state checks and report (pure parts)."""

from __future__ import annotations

import pytest

from uav.errors import PreflightFailed
from uav.preflight import (
    PreflightCheck, PreflightReport, fence_type_for, safe_params, state_checks,
)
from uav.telemetry import Telemetry

READY = Telemetry(system_id=1, vehicle_type="copter", heartbeat_at_s=100.0, ekf_ok=True,
                  ekf_flags=0x33F, gps_fix_type=3, satellites=10, battery_pct=90.0)


def _by_name(checks: list[PreflightCheck]) -> dict[str, PreflightCheck]:
    return {c.name: c for c in checks}


def test_a_ready_vehicle_passes_every_state_check() -> None:
    checks = state_checks(READY, heartbeat_age_s=0.5, need_pct=40, reserve_pct=20)
    assert [c.name for c in checks] == ["heartbeat", "ekf", "gps", "battery"]
    assert all(c.passed for c in checks)


def test_each_failure_says_why() -> None:
    from dataclasses import replace
    t = replace(READY, ekf_ok=False, ekf_flags=0xA7, gps_fix_type=2, satellites=4,
                battery_pct=50.0)
    checks = _by_name(state_checks(t, heartbeat_age_s=5.0, need_pct=40, reserve_pct=20))
    assert not any(c.passed for c in checks.values())
    assert "5.0 s ago" in checks["heartbeat"].reason
    assert "0xa7" in checks["ekf"].reason
    assert "fix type 2" in checks["gps"].reason and "4 satellites" in checks["gps"].reason
    assert "50 % < 40 % needed + 20 % reserve" in checks["battery"].reason
    assert all(c.reason_zh for c in checks.values())
    never = _by_name(state_checks(Telemetry(system_id=1), heartbeat_age_s=float("inf"),
                                  need_pct=0, reserve_pct=0))
    assert never["heartbeat"].reason == "no heartbeat received"
    assert never["battery"].reason == "battery level not reported"


def test_report_raises_with_every_failure() -> None:
    report = PreflightReport("copter-1", (PreflightCheck("ekf", False, "EKF not ready"),
                                          PreflightCheck("gps", True, "ok"),
                                          PreflightCheck("battery", False, "battery 10 %")))
    assert not report.passed and [c.name for c in report.failures] == ["ekf", "battery"]
    with pytest.raises(PreflightFailed) as info:
        report.raise_if_failed()
    assert info.value.report is report
    assert "ekf (EKF not ready)" in str(info.value) and "battery (battery 10 %)" in str(info.value)
    assert report.to_dict()["passed"] is False
    ok = PreflightReport("copter-1", (PreflightCheck("gps", True, "ok"),))
    assert ok.raise_if_failed() is ok
    assert not PreflightReport("x", ()).passed  # no checks is not a pass


def test_safe_params_per_vehicle_type() -> None:
    assert safe_params("copter") == {"FS_GCS_ENABLE": 1, "BATT_FS_LOW_ACT": 2, "FENCE_ACTION": 1}
    assert safe_params("boat")["BATT_FS_LOW_ACT"] == 1  # Rover: 1 RTL (2 would be Hold)
    assert safe_params("boat")["FS_ACTION"] == 1
    assert fence_type_for("copter", alt_max=True) == 5
    assert fence_type_for("copter", alt_max=False) == 4
    assert fence_type_for("boat", alt_max=True) == 4
