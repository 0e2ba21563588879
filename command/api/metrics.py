"""Prometheus text exposition (format 0.0.4) of the service's counters and gauges."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..runtime import Service


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(service: Service, live: Any = None) -> str:
    stats = service.ingestor.stats
    lines = [
        "# HELP yingji_readings_accepted_total Sensor readings accepted by ingest.",
        "# TYPE yingji_readings_accepted_total counter",
        f"yingji_readings_accepted_total {stats.accepted}",
        "# HELP yingji_readings_rejected_total Sensor readings or payloads rejected, by reason.",
        "# TYPE yingji_readings_rejected_total counter",
    ]
    for reason, n in sorted(stats.rejected.items()):
        lines.append(f'yingji_readings_rejected_total{{reason="{_esc(reason)}"}} {n}')
    lines += ["# HELP yingji_readings_flagged_total Readings kept but flagged by a quality check, by flag and check.",
              "# TYPE yingji_readings_flagged_total counter"]
    for (flag, check), n in sorted(service.metrics.flagged.items()):
        lines.append(f'yingji_readings_flagged_total{{flag="{_esc(flag)}",check="{_esc(check)}"}} {n}')
    now = service.clock.now()
    states = Counter(service.sensing.state(sid, now) for sid in service.registry)
    lines += ["# HELP yingji_sensors Registered sensors by health state.", "# TYPE yingji_sensors gauge"]
    for state in ("ok", "stale", "offline", "maintenance", "unknown"):
        lines.append(f'yingji_sensors{{state="{state}"}} {states.get(state, 0)}')
    if service.sl651 is not None:
        g = service.sl651.stats
        lines += ["# HELP yingji_sl651_frames_total SL 651 frames accepted from stations.",
                  "# TYPE yingji_sl651_frames_total counter", f"yingji_sl651_frames_total {g.frames_ok}",
                  "# HELP yingji_sl651_rejected_total SL 651 frames or elements refused, by reason.",
                  "# TYPE yingji_sl651_rejected_total counter"]
        for reason, n in sorted(g.rejected.items()):
            lines.append(f'yingji_sl651_rejected_total{{reason="{_esc(reason)}"}} {n}')
        lines += ["# HELP yingji_sl651_connections SL 651 station connections open.",
                  "# TYPE yingji_sl651_connections gauge", f"yingji_sl651_connections {g.open_connections}"]
    terrain = service.fleet.terrain_server
    if terrain is not None:
        lines += ["# HELP yingji_terrain_requests_total Vehicles' TERRAIN_REQUESTs answered from the district terrain.",
                  "# TYPE yingji_terrain_requests_total counter",
                  f"yingji_terrain_requests_total {terrain.counters['requests']}",
                  "# HELP yingji_terrain_bits_sent_total TERRAIN_DATA sub-grids sent.",
                  "# TYPE yingji_terrain_bits_sent_total counter",
                  f"yingji_terrain_bits_sent_total {terrain.counters['bits_sent']}"]
    lines += ["# HELP yingji_risk_compute_ms Duration of the last full risk-map recompute.",
              "# TYPE yingji_risk_compute_ms gauge", f"yingji_risk_compute_ms {service.metrics.risk_compute_ms:.1f}"]
    lines += ["# HELP yingji_readings_duplicate_total Readings already stored (same sensor, quantity, time).",
              "# TYPE yingji_readings_duplicate_total counter",
              f"yingji_readings_duplicate_total {stats.duplicates + service.writer.stats.duplicates}",
              "# HELP yingji_store_batches_total Reading batches written (one transaction each).",
              "# TYPE yingji_store_batches_total counter",
              f"yingji_store_batches_total {service.writer.stats.batches}"]
    by_level_status = Counter((r.level, r.status) for r in service.store.incidents())
    lines += ["# HELP yingji_incidents Incidents by level (1 blue .. 4 red) and status.",
              "# TYPE yingji_incidents gauge"]
    for (level, status), n in sorted(by_level_status.items()):
        lines.append(f'yingji_incidents{{level="{level}",status="{_esc(status)}"}} {n}')
    lines += ["# HELP yingji_incidents_opened_total Incidents opened since start.",
              "# TYPE yingji_incidents_opened_total counter",
              f"yingji_incidents_opened_total {service.metrics.incidents_opened}"]
    by_state = Counter(v["state"] for v in service.vehicles())
    lines += ["# HELP yingji_vehicles Vehicles by state.", "# TYPE yingji_vehicles gauge"]
    for state in ("ready", "on_task", "lost", "offline"):
        lines.append(f'yingji_vehicles{{state="{state}"}} {by_state.get(state, 0)}')
    lines += ["# HELP yingji_dispatches_total Dispatch outcomes.", "# TYPE yingji_dispatches_total counter"]
    for outcome, n in sorted(service.metrics.dispatches.items()):
        lines.append(f'yingji_dispatches_total{{outcome="{_esc(outcome)}"}} {n}')
    lines += ["# HELP yingji_mqtt_published_total Messages the service published.",
              "# TYPE yingji_mqtt_published_total counter",
              f"yingji_mqtt_published_total {service.metrics.mqtt_published}",
              "# HELP yingji_mqtt_publish_dropped_total Outgoing messages dropped while the broker was unreachable.",
              "# TYPE yingji_mqtt_publish_dropped_total counter",
              f"yingji_mqtt_publish_dropped_total {service.metrics.mqtt_publish_dropped}",
              "# HELP yingji_flight_reports_total Positions reported to the flight-data endpoint.",
              "# TYPE yingji_flight_reports_total counter",
              f"yingji_flight_reports_total {service.report_stats.sent}",
              "# HELP yingji_flight_report_failures_total Failed flight-data report attempts.",
              "# TYPE yingji_flight_report_failures_total counter",
              f"yingji_flight_report_failures_total {service.report_stats.failures}",
              "# HELP yingji_ws_subscribers Live feed (/ws) clients connected.",
              "# TYPE yingji_ws_subscribers gauge",
              f"yingji_ws_subscribers {live.stats()['clients'] if live is not None else 0}",
              "# HELP yingji_ws_frames_total Frames sent to live feed clients.",
              "# TYPE yingji_ws_frames_total counter",
              f"yingji_ws_frames_total {live.stats()['frames_sent'] if live is not None else 0}",
              "# HELP yingji_ws_overflows_total Live feed clients told they fell too far behind (bus.overflow).",
              "# TYPE yingji_ws_overflows_total counter",
              f"yingji_ws_overflows_total {live.stats()['overflows'] if live is not None else 0}"]
    return "\n".join(lines) + "\n"
