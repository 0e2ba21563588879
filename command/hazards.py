"""Hazards that need more than one sensor: fire weather and fire detections, gas plumes.

``HazardWatch`` keeps what these models read across sensors — each weather station's
observations and daily Fire Weather Index codes, recent fire detections — and turns a new
reading into ``Assessment``s. Synchronous and clock-free (reading times drive it); no I/O.

- Fire weather: the FWI System runs on *noon* observations (Van Wagner 1987). For each
  weather station and local day, the reading nearest local noon (within an hour) of
  temperature, humidity and wind, and the rain of the 24 h ending at noon, advance the
  station's codes by one day (start-up codes 85 / 6 / 15, the System's standard). The day's
  FWI gives the danger level (``command.risk.fire.danger_level``).
- Fire detections: smoke above its alarm obscuration, a flame sensor's flame or heat, a
  camera's detection with its bearing. ``command.risk.fire.corroborate`` confirms them (two
  independent detections, or one when the nearest station's danger is high) or leaves them
  unverified for a drone or a crew; the wind-driven spread after an hour is estimated with the
  nearest station's wind and codes.
- Gas: a detector's alarm (``command.risk.assess``) gets a plume: the source is the site,
  the wind the nearest station's latest, the stability class from wind and daylight, and the
  release rate back-calculated from the highest reading (the rate that puts that
  concentration at that detector), or the site's declared ``release_g_per_s``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import mapping

from sensors.model import Reading
from sensors.registry import SensorSpec

from .dispatch.geometry import ground_distance_m
from .risk import chemical, fire
from .risk.rules import Assessment, Level

__all__ = ["FireDay", "HazardWatch"]

LOCAL = ZoneInfo("Asia/Shanghai")
NOON_TOLERANCE = timedelta(hours=1)
DETECTION_KEEP = timedelta(hours=1)
WIND_MAX_AGE = timedelta(hours=1)
SPREAD_HOURS = 1.0
# Defaults where a sensor's registry entry does not say (project choices): smoke alarm at
# 3 %/m obscuration (within EN 54-7's ~1.6–12 %/m sensitivity band), a flame sensor's
# flame signal at 0.5 or its heat at 70 °C, a camera's detection at confidence 0.5.
SMOKE_ALARM_PCT_PER_M = 3.0
FLAME_ALARM_C = 70.0
CAMERA_MIN_CONFIDENCE = 0.5
DEFAULT_RELEASE_G_PER_S = 100.0


@dataclass(frozen=True, slots=True)
class FireDay:
    """One station's FWI System codes for one local day."""

    station_id: str
    day: date
    codes: fire.FwiDay
    danger: fire.DangerLevel
    noon: fire.NoonWeather


@dataclass(slots=True)
class _Station:
    spec: SensorSpec
    obs: dict[str, deque[Reading]] = field(default_factory=dict)
    days: dict[date, FireDay] = field(default_factory=dict)
    settled: set[date] = field(default_factory=set)


class HazardWatch:
    """Cross-sensor hazard state for one district."""

    def __init__(self, specs: Iterable[SensorSpec], *, sites: Mapping[str, tuple[float, float]] | None = None,
                 population: chemical.PopulationPoints | None = None,
                 facilities: chemical.Facilities | None = None) -> None:
        self._specs = {s.sensor_id: s for s in specs}
        self._stations = {s.sensor_id: _Station(s) for s in self._specs.values() if s.kind == "weather_station"}
        self._detections: deque[fire.Detection] = deque(maxlen=1000)
        # a camera sends confidence and bearing as two records of one pack: whichever comes
        # second completes the detection
        self._camera: dict[tuple[str, datetime], dict[str, float]] = {}
        self._sites = dict(sites or {})
        self._population = population
        self._facilities = facilities

    # -- entry point ----------------------------------------------------------------------
    def observe(self, spec: SensorSpec, reading: Reading) -> list[Assessment]:
        """A stored, not-bad reading; the assessments it leads to (fire), possibly none."""
        if spec.kind == "weather_station":
            self._weather(spec, reading)
            return []
        if spec.kind == "fire_camera":
            if reading.quantity not in ("confidence", "bearing"):
                return []
            if len(self._camera) > 1000:
                self._camera.clear()
            parts = self._camera.setdefault((spec.sensor_id, reading.time), {})
            parts[reading.quantity] = reading.value
            if "confidence" not in parts or "bearing" not in parts:
                return []
        if spec.kind in ("smoke_detector", "flame_sensor", "fire_camera"):
            detection = self._detection(spec, reading)
            if detection is None:
                return []
            self._detections.append(detection)
            return [self._fire_assessment(detection)]
        return []

    # -- fire weather ---------------------------------------------------------------------
    def _weather(self, spec: SensorSpec, r: Reading) -> None:
        station = self._stations[spec.sensor_id]
        series = station.obs.setdefault(r.quantity, deque(maxlen=2000))
        series.append(r)
        local = r.time.astimezone(LOCAL)
        day = local.date() if local.hour >= 11 else local.date() - timedelta(days=1)
        noon = (datetime.combine(day, datetime.min.time(), LOCAL) + timedelta(hours=12)).astimezone(timezone.utc)
        # a reading up to an hour after noon may complete (or, late, correct) the day; after that
        # the day is tried once more, then settled until a late reading from before noon comes
        if r.time <= noon + NOON_TOLERANCE:
            station.settled.discard(day)
            self._advance(station, day)
        elif day not in station.settled:
            station.settled.add(day)
            self._advance(station, day)

    def _near(self, station: _Station, quantity: str, at: datetime) -> Reading | None:
        best = None
        for r in station.obs.get(quantity, ()):
            if abs(r.time - at) <= NOON_TOLERANCE and (best is None or abs(r.time - at) < abs(best.time - at)):
                best = r
        return best

    def _advance(self, station: _Station, day: date) -> None:
        """Compute (or recompute, when late data came) the codes of ``day`` at this station."""
        noon = (datetime.combine(day, datetime.min.time(), LOCAL) + timedelta(hours=12)).astimezone(timezone.utc)
        temp, rh, wind = (self._near(station, q, noon) for q in ("temp", "humidity", "wind_speed"))
        if temp is None or rh is None or wind is None:
            return
        rain = sum(r.value for r in station.obs.get("rain", ()) if noon - timedelta(hours=24) < r.time <= noon)
        obs = fire.NoonWeather(day.month, temp.value, rh.value, wind.value * 3.6, rain)
        prev = station.days.get(day - timedelta(days=1))
        start = (85.0, 6.0, 15.0) if prev is None else (prev.codes.ffmc, prev.codes.dmc, prev.codes.dc)
        codes = fire.fwi_series([obs], station.spec.lat, *start)[0]
        station.days[day] = FireDay(station.spec.sensor_id, day, codes, fire.danger_level(codes.fwi), obs)
        for old in [d for d in station.days if d < day - timedelta(days=60)]:
            del station.days[old]

    def fire_days(self) -> list[FireDay]:
        """Every station's newest day."""
        out = []
        for st in self._stations.values():
            if st.days:
                out.append(st.days[max(st.days)])
        return out

    def _nearest_station(self, lon: float, lat: float) -> _Station | None:
        best: tuple[float, _Station] | None = None
        for st in self._stations.values():
            d = ground_distance_m((lon, lat), (st.spec.lon, st.spec.lat))
            if best is None or d < best[0]:
                best = (d, st)
        return best[1] if best else None

    def _wind(self, lon: float, lat: float, at: datetime) -> tuple[float, float] | None:
        """(speed m/s, from degrees) of the nearest station with a recent wind, if any."""
        st = self._nearest_station(lon, lat)
        if st is None:
            return None
        speed = [r for r in st.obs.get("wind_speed", ()) if abs(r.time - at) <= WIND_MAX_AGE]
        direction = [r for r in st.obs.get("wind_dir", ()) if abs(r.time - at) <= WIND_MAX_AGE]
        if not speed or not direction:
            return None
        s = min(speed, key=lambda r: abs(r.time - at))
        d = min(direction, key=lambda r: abs(r.time - at))
        return s.value, d.value % 360.0

    # -- fire detections ------------------------------------------------------------------
    def _detection(self, spec: SensorSpec, r: Reading) -> fire.Detection | None:
        th = spec.thresholds
        if spec.kind == "smoke_detector" and r.quantity == "obscuration":
            if r.value < th.get("alarm_pct_per_m", SMOKE_ALARM_PCT_PER_M):
                return None
            return fire.Detection(spec.sensor_id, "smoke", r.time, spec.lon, spec.lat, 1.0)
        if spec.kind == "flame_sensor" and r.quantity in ("flame", "temp"):
            alarm = r.value >= 0.5 if r.quantity == "flame" else r.value >= th.get("alarm_c", FLAME_ALARM_C)
            if not alarm:
                return None
            return fire.Detection(spec.sensor_id, "flame", r.time, spec.lon, spec.lat, 1.0)
        if spec.kind == "fire_camera":
            parts = self._camera.get((spec.sensor_id, r.time), {})
            confidence = parts.get("confidence", 0.0)
            if confidence < th.get("min_confidence", CAMERA_MIN_CONFIDENCE):
                return None
            bearing = parts.get("bearing")
            return fire.Detection(spec.sensor_id, "camera", r.time, spec.lon, spec.lat, confidence,
                                  None if bearing is None else bearing % 360.0)
        return None

    def _fire_assessment(self, detection: fire.Detection) -> Assessment:
        recent = [d for d in self._detections if abs(d.time - detection.time) <= DETECTION_KEEP]
        st = self._nearest_station(detection.lon, detection.lat)
        day = st.days.get(detection.time.astimezone(LOCAL).date()) if st else None
        if day is None and st is not None and st.days:
            day = st.days[max(st.days)]
        danger = day.danger if day else None
        verdict = fire.corroborate(recent, danger=danger)
        used = {d.sensor_id for d in verdict.detections} or {detection.sensor_id}
        lon, lat = verdict.position_lonlat or (detection.lon, detection.lat)
        # Level (project choice): an unverified detection is blue (someone should look); a
        # confirmed fire is yellow, orange when the danger is very high, red when extreme.
        if not verdict.confirmed:
            level = Level.BLUE
        elif danger is not None and danger >= fire.DangerLevel.EXTREME:
            level = Level.RED
        elif danger is not None and danger >= fire.DangerLevel.VERY_HIGH:
            level = Level.ORANGE
        else:
            level = Level.YELLOW
        extra: dict[str, Any] = {
            "verification": {"state": verdict.status, "reason": verdict.reason},
            "detections": sorted(used), "position": [lon, lat],
            "danger": int(danger) if danger is not None else None,
            "danger_label": danger.label if danger is not None else None,
        }
        reason = f"Fire {verdict.status}: {verdict.reason}"
        reason_zh = f"火情{'已确认' if verdict.confirmed else '待核实'}：{verdict.reason}"
        if danger is not None:
            reason += f"; fire danger {danger.label} (FWI {day.codes.fwi:.1f} at {day.station_id})"  # type: ignore[union-attr]
            reason_zh += f"；森林火险{danger.label_zh}（FWI {day.codes.fwi:.1f}）"  # type: ignore[union-attr]
        wind = self._wind(lon, lat, detection.time)
        if wind is not None and day is not None:
            speed, from_deg = wind
            wind_kmh = speed * 3.6
            spread = fire.spread_estimate((lon, lat), wind_kmh=wind_kmh, wind_from_deg=from_deg,
                                          isi=fire.isi(day.codes.ffmc, wind_kmh), bui=day.codes.bui,
                                          elapsed_h=SPREAD_HOURS)
            extra["spread"] = {"elapsed_h": SPREAD_HOURS, "head_ros_m_per_min": round(spread.head_ros_m_per_min, 2),
                               "area_ha": round(spread.area_ha, 2), "downwind_deg": round(spread.downwind_deg, 1),
                               "perimeter": mapping(spread.perimeter)}
            reason += (f"; spreads ~{spread.head_ros_m_per_min:.1f} m/min towards {spread.downwind_deg:.0f}° "
                       f"(~{spread.area_ha:.1f} ha in {SPREAD_HOURS:g} h, FBP C-3)")
            reason_zh += f"；预计蔓延速度约 {spread.head_ros_m_per_min:.1f} 米/分，1 小时约 {spread.area_ha:.1f} 公顷"
        return Assessment("fire", level, detection.sensor_id, detection.confidence, "/", reason, reason_zh,
                          extra=extra)

    # -- gas plume ------------------------------------------------------------------------
    def with_plume(self, spec: SensorSpec, reading: Reading, a: Assessment) -> Assessment:
        """A gas alarm with the plume it implies (when a recent wind is known)."""
        if a.kind != "chemical_leak" or a.level == Level.NONE:
            return a
        site_id = spec.properties.get("site")
        src_lon, src_lat = self._sites.get(site_id, (spec.lon, spec.lat)) if isinstance(site_id, str) \
            else (spec.lon, spec.lat)
        wind = self._wind(src_lon, src_lat, reading.time)
        extra = dict(a.extra or {})
        if wind is None:
            extra["plume"] = None
            return replace(a, extra=extra, reason=a.reason + "; no recent wind from a weather station: no plume",
                           reason_zh=a.reason_zh + "；无近期风况，未估算扩散范围")
        speed, from_deg = wind
        local_hour = reading.time.astimezone(LOCAL).hour
        # no radiation sensor: daytime insolation taken as "slight", the more stable (narrower,
        # more concentrated plume) of the choices, which is the cautious one for evacuation
        daytime = 7 <= local_hour < 19
        stability = chemical.pasquill_stability(speed, daytime=daytime, insolation="slight" if daytime else None,
                                                cloud_oktas=None if daytime else 2)
        key = reading.quantity
        declared = spec.properties.get("release_g_per_s")
        rate, how = self._release_rate(key, reading.value, spec, (src_lon, src_lat), speed, from_deg, stability)
        if isinstance(declared, (int, float)) and not isinstance(declared, bool) and declared > 0:
            rate, how = float(declared), "declared by the site"
        zones = chemical.evacuation_zones(key, source_lon=src_lon, source_lat=src_lat, emission_g_per_s=rate,
                                          wind_from_deg=from_deg, wind_speed_mps=speed, stability=stability,
                                          population=self._population, facilities=self._facilities)
        warm = zones.warm
        extra["plume"] = {
            "source": [src_lon, src_lat], "emission_g_per_s": round(rate, 3), "emission_basis": how,
            "wind_speed_mps": speed, "wind_from_deg": from_deg, "stability": stability,
            "warm_zone": mapping(warm.footprint) if not warm.footprint.is_empty else None,
            "hot_zone": mapping(zones.hot.footprint) if not zones.hot.footprint.is_empty else None,
            "downwind_length_m": round(warm.downwind_length_m, 1),
            "people_inside": None if math.isnan(warm.people_inside) else int(round(warm.people_inside)),
            "facilities_inside": list(warm.facility_ids_inside), "why": warm.why,
        }
        people = extra["plume"]["people_inside"]
        reason = a.reason + (f"; plume to ~{warm.downwind_length_m / 1000:.1f} km downwind "
                             f"({stability} stability, wind {speed:.1f} m/s from {from_deg:.0f}°)")
        reason_zh = a.reason_zh + f"；下风向扩散约 {warm.downwind_length_m / 1000:.1f} 公里"
        if people is not None:
            reason += f", about {people} people inside"
            reason_zh += f"，影响人口约 {people} 人"
        return replace(a, extra=extra, reason=reason, reason_zh=reason_zh)

    @staticmethod
    def _release_rate(key: str, ppm: float, spec: SensorSpec, source: tuple[float, float], speed: float,
                      from_deg: float, stability: str) -> tuple[float, str]:
        """The release that puts ``ppm`` at the detector (Gaussian plume, linear in the rate)."""
        if ground_distance_m((source[0], source[1]), (spec.lon, spec.lat)) < 20.0:
            return DEFAULT_RELEASE_G_PER_S, "default (detector at the source)"
        unit = chemical.ground_concentration_mg_m3_at(
            spec.lon, spec.lat, key=key, source_lon=source[0], source_lat=source[1], emission_g_per_s=1.0,
            wind_from_deg=from_deg, wind_speed_mps=speed, stability=stability)
        c_unit = float(unit) if unit.ndim == 0 else float(unit.ravel()[0])
        if not math.isfinite(c_unit) or c_unit <= 1e-9:
            return DEFAULT_RELEASE_G_PER_S, "default (detector not downwind of the source)"
        mg_m3 = chemical.ppm_to_mg_m3(ppm, chemical.substance(key).molar_mass_g_per_mol)
        return float(mg_m3) / c_unit, "back-calculated from the detector"
