"""Pre-flight checks before arming: link, EKF, GPS, battery, failsafes, geofence.

    report = await preflight(vehicle, need_pct=35, reserve_pct=20,
                             fence=Fence.inclusion_polygon(area), required_params={})
    report.raise_if_failed()          # PreflightFailed(report) names every failed check
    await vehicle.arm()

The state checks are pure (:func:`state_checks` reads one :class:`Telemetry`); the
parameter and fence steps talk to the vehicle: a failsafe parameter that differs from its
safe value is set and verified, a given fence is uploaded, its type chosen and then enabled.
Nothing here arms the vehicle.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import PreflightFailed, UavError
from uav.fence import Fence
from uav.params import values_equal
from uav.telemetry import Telemetry

__all__ = ["PreflightCheck", "PreflightReport", "preflight", "state_checks", "safe_params",
           "fence_type_for", "HEARTBEAT_MAX_AGE_S", "MIN_FIX_TYPE", "MIN_SATELLITES"]

log = logging.getLogger(__name__)

# A vehicle not heard for 3 GCS heartbeat periods (1 Hz, MAVLink heartbeat protocol) is
# not "fresh": ArduPilot's own GCS failsafe floor in the simulator uses the same 3 beats.
HEARTBEAT_MAX_AGE_S: Final = 3.0
# GPS_FIX_TYPE_3D_FIX (3) and 6 satellites: ArduPilot's GPS arming check wants a 3D fix
# (AP_Arming::gps_checks) and the EKF's default GPS check (EK3_GPS_CHECK) wants >= 6 sats.
MIN_FIX_TYPE: Final = 3
MIN_SATELLITES: Final = 6
# AC_Fence FENCE_TYPE bits (AC_Fence.h): 1 max altitude, 2 circle around home, 4 polygon
# (the uploaded inclusion/exclusion polygons and circles), 8 min altitude.
FENCE_TYPE_ALT_MAX: Final = 1
FENCE_TYPE_CIRCLE: Final = 2
FENCE_TYPE_POLYGON: Final = 4

# Safe failsafe actions, per ArduPilot parameter docs:
# Copter FS_GCS_ENABLE 1 = RTL; BATT_FS_LOW_ACT 2 = RTL (1 Land, 3 SmartRTL...);
# FENCE_ACTION 1 = RTL or Land.
# Rover/boat FS_GCS_ENABLE 1 = enabled with FS_ACTION 1 = RTL; BATT_FS_LOW_ACT 1 = RTL
# (2 is Hold: a boat holding on the water with a flat battery is stranded); FENCE_ACTION 1 = RTL.
_SAFE_COPTER: Final = {"FS_GCS_ENABLE": 1.0, "BATT_FS_LOW_ACT": 2.0, "FENCE_ACTION": 1.0}
_SAFE_ROVER: Final = {"FS_GCS_ENABLE": 1.0, "FS_ACTION": 1.0, "BATT_FS_LOW_ACT": 1.0,
                      "FENCE_ACTION": 1.0}


class _VehicleLike(Protocol):  # the subset of uav.vehicle.Vehicle used here
    name: str

    @property
    def state(self) -> Telemetry: ...
    @property
    def vehicle_type(self) -> str: ...
    async def get_param(self, name: str, timeout_s: float = ...) -> float: ...
    async def set_param(self, name: str, value: float) -> float: ...
    async def upload_fence(self, fence: Fence) -> None: ...


@dataclass(frozen=True, slots=True)
class PreflightCheck:
    """One check: what, whether it passed, and why (English; Chinese when given)."""

    name: str
    passed: bool
    reason: str
    reason_zh: str = ""


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """Every check made for one vehicle, in order."""

    vehicle: str
    checks: tuple[PreflightCheck, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[PreflightCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """``"copter-1: preflight failed: ekf (EKF not ready ...); battery (...)"``."""
        if self.passed:
            return f"{self.vehicle}: preflight passed ({len(self.checks)} checks)"
        return f"{self.vehicle}: preflight failed: " + "; ".join(
            f"{c.name} ({c.reason})" for c in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"vehicle": self.vehicle, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}

    def raise_if_failed(self) -> PreflightReport:
        """PreflightFailed (carrying this report) unless every check passed."""
        if not self.passed:
            raise PreflightFailed(self.summary(), report=self)
        return self


def safe_params(vehicle_type: str) -> dict[str, float]:
    """The failsafe parameter values a vehicle of this type must hold before it flies."""
    return dict(_SAFE_COPTER if vehicle_type in ("copter", "plane") else _SAFE_ROVER)


def fence_type_for(vehicle_type: str, *, alt_max: bool) -> int:
    """FENCE_TYPE for an uploaded fence: the polygon bit, plus max altitude for aircraft
    when asked. The circle around home (FENCE_RADIUS, stock 150 m, FACTS) is left out: it
    would cut a longer mission short."""
    bits = FENCE_TYPE_POLYGON
    if alt_max and vehicle_type in ("copter", "plane"):
        bits |= FENCE_TYPE_ALT_MAX
    return bits


def state_checks(t: Telemetry, *, heartbeat_age_s: float, need_pct: float, reserve_pct: float,
                 heartbeat_max_age_s: float = HEARTBEAT_MAX_AGE_S) -> list[PreflightCheck]:
    """Heartbeat, EKF, GPS and battery checks on one snapshot (pure)."""
    out: list[PreflightCheck] = []
    if not t.heartbeat_seen:
        out.append(PreflightCheck("heartbeat", False, "no heartbeat received", "未收到心跳"))
    elif heartbeat_age_s > heartbeat_max_age_s:
        out.append(PreflightCheck("heartbeat", False,
                                  f"last heartbeat {heartbeat_age_s:.1f} s ago "
                                  f"(limit {heartbeat_max_age_s:g} s)",
                                  f"心跳已中断 {heartbeat_age_s:.1f} 秒"))
    else:
        out.append(PreflightCheck("heartbeat", True, f"heard {heartbeat_age_s:.1f} s ago",
                                  "心跳正常"))
    if t.ekf_ok:
        out.append(PreflightCheck("ekf", True, f"EKF ok (flags 0x{t.ekf_flags:x})", "EKF 正常"))
    else:
        out.append(PreflightCheck("ekf", False,
                                  f"EKF not ready: no absolute horizontal position "
                                  f"(flags 0x{t.ekf_flags:x})", "EKF 未就绪"))
    if t.gps_fix_type >= MIN_FIX_TYPE and t.satellites >= MIN_SATELLITES:
        out.append(PreflightCheck("gps", True, f"fix type {t.gps_fix_type}, "
                                  f"{t.satellites} satellites", "GPS 正常"))
    else:
        out.append(PreflightCheck("gps", False,
                                  f"GPS fix type {t.gps_fix_type} with {t.satellites} "
                                  f"satellites (need fix >= {MIN_FIX_TYPE} (3D) and "
                                  f">= {MIN_SATELLITES} satellites)", "GPS 定位不足"))
    need = need_pct + reserve_pct
    if not math.isfinite(t.battery_pct):
        out.append(PreflightCheck("battery", False, "battery level not reported",
                                  "未收到电量"))
    elif t.battery_pct >= need:
        out.append(PreflightCheck("battery", True,
                                  f"battery {t.battery_pct:.0f} % >= {need_pct:g} % needed "
                                  f"+ {reserve_pct:g} % reserve", "电量充足"))
    else:
        out.append(PreflightCheck("battery", False,
                                  f"battery {t.battery_pct:.0f} % < {need_pct:g} % needed "
                                  f"+ {reserve_pct:g} % reserve", "电量不足"))
    return out


async def _ensure_param(vehicle: _VehicleLike, name: str, wanted: float) -> PreflightCheck:
    check = f"param {name}"
    try:
        current = await vehicle.get_param(name)
        if values_equal(current, wanted, mav.MAV_PARAM_TYPE_REAL32):  # ints compare exactly too
            return PreflightCheck(check, True, f"{name} = {current:g}", f"{name} 已正确设置")
        got = await vehicle.set_param(name, wanted)
        return PreflightCheck(check, True, f"{name} set {current:g} → {got:g}",
                              f"{name} 已改为 {got:g}")
    except (UavError, ValueError) as err:
        return PreflightCheck(check, False, f"{name} should be {wanted:g}: {err}",
                              f"{name} 无法设为 {wanted:g}")


async def _ensure_fence(vehicle: _VehicleLike, fence: Fence,
                        alt_max_m: float | None) -> list[PreflightCheck]:
    try:
        await vehicle.upload_fence(fence)
    except UavError as err:
        return [PreflightCheck("fence", False, f"fence upload failed: {err}", "围栏上传失败")]
    out = [PreflightCheck("fence", True, f"fence uploaded ({len(fence.polygons)} polygons, "
                          f"{len(fence.circles)} circles)", "围栏已上传")]
    settings: list[tuple[str, float]] = []
    if alt_max_m is not None:
        settings.append(("FENCE_ALT_MAX", alt_max_m))
    settings.append(("FENCE_TYPE", float(fence_type_for(vehicle.vehicle_type,
                                                         alt_max=alt_max_m is not None))))
    settings.append(("FENCE_ENABLE", 1.0))  # last: the fence is live only once it is right
    for name, value in settings:
        check = await _ensure_param(vehicle, name, value)
        out.append(check)
        if not check.passed:
            break
    return out


async def preflight(vehicle: _VehicleLike, *, need_pct: float, reserve_pct: float,
                    fence: Fence | None, required_params: Mapping[str, float],
                    fence_alt_max_m: float | None = None,
                    heartbeat_max_age_s: float = HEARTBEAT_MAX_AGE_S) -> PreflightReport:
    """Check a vehicle before arming; set failsafe parameters and the fence when needed.

    ``required_params`` override or add to :func:`safe_params`. Returns the report (never
    arms); call ``report.raise_if_failed()`` to stop on any failure.
    """
    t = vehicle.state
    age_s = time.monotonic() - t.heartbeat_at_s if t.heartbeat_seen else math.inf
    checks = state_checks(t, heartbeat_age_s=age_s, need_pct=need_pct, reserve_pct=reserve_pct,
                          heartbeat_max_age_s=heartbeat_max_age_s)
    wanted = safe_params(vehicle.vehicle_type) | {k: float(v) for k, v in required_params.items()}
    if not checks[0].passed:  # no link: every exchange below would only time out
        checks += [PreflightCheck(f"param {name}", False, "not checked: vehicle not heard",
                                  "未检查：无连接") for name in wanted]
        if fence is not None:
            checks.append(PreflightCheck("fence", False, "not checked: vehicle not heard",
                                         "未检查：无连接"))
        return _done(vehicle, checks)
    for name, value in wanted.items():
        checks.append(await _ensure_param(vehicle, name, value))
    if fence is not None:
        checks += await _ensure_fence(vehicle, fence, fence_alt_max_m)
    else:
        checks.append(PreflightCheck("fence", True, "no fence required", "无需围栏"))
    return _done(vehicle, checks)


def _done(vehicle: _VehicleLike, checks: list[PreflightCheck]) -> PreflightReport:
    report = PreflightReport(vehicle.name, tuple(checks))
    log.log(logging.INFO if report.passed else logging.WARNING, "%s", report.summary())
    return report
