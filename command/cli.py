"""The ``yingji`` command line: demo, serve, simulators."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from pathlib import Path

from .clock import Clock, ScaledClock, SystemClock
from .settings import Settings

log = logging.getLogger("yingji")


def _district_dir(settings: Settings, *, generate: bool) -> Path:
    """The configured district folder, or the synthetic Yubei folder under the data folder."""
    if settings.district_dir is not None:
        return settings.district_dir
    out = settings.data_dir / "district"
    if generate:
        from sitl.scenarios.yubei.generate import generate as generate_yubei  # simulation only

        generate_yubei(out)
    elif not (out / "district.yaml").exists():
        raise SystemExit(f"no district folder: set YINGJI_DISTRICT_DIR, or run `yingji demo` once to "
                         f"generate the synthetic Yubei folder into {out}")
    return out


def _clock(settings: Settings) -> Clock:
    """Wall-clock UTC, or scaled simulation time when YINGJI_SIM_SPEED/EPOCH are set."""
    if settings.sim_speed == 1.0 and settings.sim_epoch is None:
        return SystemClock()
    return ScaledClock(settings.sim_epoch or SystemClock().now(), settings.sim_speed)


async def _serve(settings: Settings, district: Path, *, clock: Clock, extra: list | None = None,
                 announce: bool = False, people: list[tuple[str, str]] | None = None) -> None:
    import uvicorn

    from .api.app import create_app
    from .runtime import Service

    service = Service(settings, district_dir=district, clock=clock)
    app = create_app(service)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            timeout_graceful_shutdown=3, lifespan="off")
    server = uvicorn.Server(config)
    async with asyncio.TaskGroup() as tg:
        svc = tg.create_task(service.run(), name="service")
        others = [tg.create_task(coro) for coro in (extra or [])]
        await service.ready.wait()
        url = f"http://{settings.host}:{settings.port}/"
        if announce:
            print(f"\nYingji console: {url}#token={service.token}\n"
                  f"API token (Authorization: Bearer …): {service.token}\n", flush=True)
            if people:
                print(f"Department view: {url}department   Crew app (phone): {url}crew\n"
                      "Sign in as (user / password):\n"
                      + "".join(f"  {user:<11} {password}\n" for user, password in people), flush=True)
        else:
            log.info("serving on %s", url)
        await server.serve(sockets=[_listener(settings)])
        for task in [svc, *others]:
            task.cancel()


def _listener(settings: Settings) -> socket.socket:
    """The HTTP listening socket, its send buffer capped (``http_send_buffer_bytes``): accepted sockets
    inherit it (Linux), so a slow live-feed client blocks the server's writes after about that much
    instead of the kernel queueing many seconds of frames; the feed then merges what it missed into one
    fresh frame (docs/live-feed.md)."""
    info = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.http_send_buffer_bytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.http_send_buffer_bytes)
    sock.bind(info[4])
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> None:
    settings = Settings()
    if args.port:
        settings.port = args.port
    district = _district_dir(settings, generate=False)
    asyncio.run(_serve(settings, district, clock=_clock(settings), announce=True))


# The demo's people: one per role (id, name, name_zh, roles, department, crew), over the synthetic district.
DEMO_PEOPLE = (
    ("chief", "Duty chief Liu", "值班主任 刘", ["duty_chief"], None, None),
    ("dispatcher", "Dispatcher Chen", "调度员 陈", ["dispatcher", "pilot"], None, None),
    ("pilot", "Pilot Zhao", "飞手 赵", ["pilot"], None, None),
    ("admin", "Administrator He", "管理员 何", ["admin"], None, None),
    ("fire", "Fire duty officer Wang", "消防值班员 王", ["department"], "fire", None),
    ("traffic", "Traffic duty officer Sun", "交通值班员 孙", ["department"], "traffic", None),
    ("health", "Health duty officer Zhou", "卫健值班员 周", ["department"], "health", None),
    ("crew", "Luoqi water rescue, Zhang", "洛碛水域救援 张", ["crew"], None, "crew-luoqi-water"),
    ("screen", "Command hall wall screen", "指挥大厅大屏", ["viewer"], None, None),
)


def _demo_users(settings: Settings) -> list[tuple[str, str]]:
    """A users file for the demo, made on the first run under the data folder: one person per role with a
    random password, kept (0600) beside it so later runs show the same. Returns (user, password) pairs."""
    import json
    import os
    import secrets

    import yaml

    from .auth import hash_password

    users_file = settings.data_dir / "demo-users.yaml"
    passwords_file = settings.data_dir / "demo-passwords.json"
    if users_file.exists() and passwords_file.exists():
        passwords = json.loads(passwords_file.read_text(encoding="utf-8"))
    else:
        passwords = {p[0]: secrets.token_urlsafe(9) for p in DEMO_PEOPLE}
        users = [{"id": uid, "name": name, "name_zh": name_zh, "roles": roles, "password_hash": hash_password(
            passwords[uid]), **({"department": dept} if dept else {}), **({"crew": crew} if crew else {})}
            for uid, name, name_zh, roles, dept, crew in DEMO_PEOPLE]
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        users_file.write_text("# Demo users (yingji demo): synthetic people of the synthetic district.\n"
                              + yaml.safe_dump({"users": users}, allow_unicode=True, sort_keys=False),
                              encoding="utf-8")
        fd = os.open(passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(passwords, f, indent=1)
    settings.users_file = users_file
    if settings.anonymous_read is None:
        settings.anonymous_read = True  # a demo on loopback: the console reads without signing in
    return [(p[0], passwords[p[0]]) for p in DEMO_PEOPLE]


def _check_scenario(district: Path, name: str) -> None:
    from sitl.scenarios.script import scenario_names  # simulation only

    names = scenario_names(district / "scenario.yaml")
    if name not in names:
        raise SystemExit(f"no scenario {name!r} in {district / 'scenario.yaml'} (it has: {', '.join(names)})")


def cmd_demo(args: argparse.Namespace) -> None:
    settings = Settings()
    if args.port:
        settings.port = args.port
    district = _district_dir(settings, generate=True)
    _check_scenario(district, args.scenario)
    settings.sim_speed = args.speed
    people = _demo_users(settings) if settings.users_file is None else []
    asyncio.run(_demo(settings, district, fleet_speedup=args.fleet_speedup, scenario=args.scenario, people=people))


async def _demo(settings: Settings, district: Path, *, fleet_speedup: float, scenario: str = "summer_flood",
                people: list[tuple[str, str]] | None = None) -> None:
    from sensors.mqtturl import parse_mqtt_url
    from sitl.fleet_sim import run_fleet
    from sitl.scenarios.devices import run_scenario_sensors

    from .broker import broker_answers, embedded_broker

    url = parse_mqtt_url(settings.broker_url)
    async with contextlib.AsyncExitStack() as stack:
        if await broker_answers(settings.broker_url):
            print(f"Using the MQTT broker at {url.host}:{url.port}", flush=True)
        else:
            await stack.enter_async_context(embedded_broker(host="127.0.0.1", port=url.port))
            print(f"No MQTT broker at {url.host}:{url.port}: started the embedded amqtt broker "
                  f"on 127.0.0.1:{url.port}", flush=True)
        # One scaled clock for the service and the scenario's sensors (hours of flood in
        # minutes); the vehicles fly at their own, gentler speed-up so they can be watched.
        clock = _clock(settings)
        fleet_file = settings.fleet_file or district / "fleet.yaml"
        extra = [
            run_fleet(fleet_file, speedup=fleet_speedup, images_dir=settings.data_dir / "images"),
            run_scenario_sensors(district, broker_url=settings.broker_url, clock=clock, scenario=scenario),
        ]
        await _serve(settings, district, clock=clock, extra=extra, announce=True, people=people)


def cmd_sim_fleet(args: argparse.Namespace) -> None:
    from sitl.fleet_sim import run_fleet

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_fleet(args.fleet, speedup=args.speedup, district=args.district,
                              flat_ground=args.flat_ground))


def cmd_sim_sensors(args: argparse.Namespace) -> None:
    from sitl.scenarios.devices import run_scenario_sensors

    settings = Settings()
    if args.speed is not None:
        settings.sim_speed = args.speed
    district = args.district or _district_dir(settings, generate=True)
    _check_scenario(district, args.scenario)
    broker = args.broker or settings.broker_url
    clock = _clock(settings)
    if isinstance(clock, ScaledClock):
        print(f"Scenario time runs {clock.speed:g}x from {clock.epoch.isoformat()}; start the service with "
              f"YINGJI_SIM_SPEED={clock.speed:g} YINGJI_SIM_EPOCH={clock.epoch.isoformat()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_scenario_sensors(district, broker_url=broker, clock=clock, scenario=args.scenario))


def cmd_scenario(args: argparse.Namespace) -> None:
    from sitl.scenarios.yubei.generate import generate as generate_yubei

    out = generate_yubei(args.out)
    print(f"Synthetic Yubei district written to {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yingji", description="Yingji (应急) district emergency command system. "
                                "Configuration: YINGJI_* environment variables (see README).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the whole system on the synthetic Yubei district: service, "
                          "simulated sensors and fleet (embedded broker if none answers)")
    demo.add_argument("--speed", type=float, default=120.0,
                      help="scenario time speed-up for sensors and service (default 120)")
    demo.add_argument("--fleet-speedup", type=float, default=5.0,
                      help="simulated vehicles' speed-up (default 5)")
    demo.add_argument("--port", type=int, default=None, help="HTTP port (default YINGJI_PORT or 8000)")
    demo.add_argument("--scenario", default="summer_flood", help="scripted scenario: summer_flood, "
                      "rainstorm_landslide, heatwave_fire, chemical_leak (default summer_flood)")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the command service (broker, vehicles and district from config)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default YINGJI_PORT or 8000)")
    serve.set_defaults(func=cmd_serve)

    sim = sub.add_parser("sim", help="simulators").add_subparsers(dest="sim", required=True)
    s_sensors = sim.add_parser("sensors", help="publish the scripted flood scenario's sensor readings over MQTT")
    s_sensors.add_argument("--district", type=Path, default=None, help="district folder (default: generated Yubei)")
    s_sensors.add_argument("--broker", default=None, help="mqtt://host:port (default YINGJI_BROKER_URL)")
    s_sensors.add_argument("--speed", type=float, default=None,
                           help="scenario speed-up (default YINGJI_SIM_SPEED or 1); the service must run "
                                "with the same YINGJI_SIM_SPEED and YINGJI_SIM_EPOCH")
    s_sensors.add_argument("--scenario", default="summer_flood", help="scripted scenario of the district's "
                           "scenario.yaml (default summer_flood; see docs/scenarios.md)")
    s_sensors.set_defaults(func=cmd_sim_sensors)
    s_fleet = sim.add_parser("fleet", help="simulated ArduPilot-compatible vehicles from a fleet file")
    s_fleet.add_argument("--fleet", type=Path, required=True, help="fleet.yaml")
    s_fleet.add_argument("--speedup", type=float, default=1.0, help="simulation speed-up (default 1)")
    s_fleet.add_argument("--district", type=Path, default=None,
                         help="district folder whose terrain.asc is the ground (default: beside the fleet file)")
    s_fleet.add_argument("--flat-ground", action="store_true", help="ignore terrain: flat ground at each base")
    s_fleet.set_defaults(func=cmd_sim_fleet)
    # handled in main() before parsing; listed here for --help
    sim.add_parser("ardupilot", help="launch ArduPilot SITL binaries (arducopter, ardurover) for a fleet")

    # analysis tools on people's own CSV files (command/tools/)
    from .tools import flood, fwi, slope

    for tool in (fwi, slope, flood):
        tool.add_parser(sub)

    hp = sub.add_parser("hash-password", help="an Argon2id hash for a users file (the password read without echo, "
                                              "or one line from standard input)")
    hp.set_defaults(func=cmd_hash_password)

    scen = sub.add_parser("scenario", help="write the synthetic Yubei district folder")
    scen.add_argument("out", type=Path, help="output folder")
    scen.set_defaults(func=cmd_scenario)

    acc = sub.add_parser("mqtt-access", help="MQTT users and topic ACLs from the district's sensor registry: "
                         "Mosquitto passwd, acl and config, and a credentials file for provisioning devices")
    acc.add_argument("--out", type=Path, required=True, help="folder to write into (its credentials.json, if any, "
                     "keeps every password not rotated)")
    rot = acc.add_mutually_exclusive_group()
    rot.add_argument("--rotate", metavar="SENSOR_ID", action="append", default=[],
                     help="give this sensor (or the user yingji-service) a new password; may be repeated")
    rot.add_argument("--rotate-all", action="store_true", help="give every user a new password")
    acc.set_defaults(func=cmd_mqtt_access)
    return p


def cmd_mqtt_access(args: argparse.Namespace) -> int:
    from sensors.registry import Registry, RegistryError

    from .mqtt_access import AccessError, devices_from_registry, write_access

    district = _district_dir(Settings(), generate=False)
    try:
        registry = Registry.from_geojson(district / "sensors.geojson")
        files = write_access(args.out, devices_from_registry(registry), rotate=args.rotate,
                             rotate_all=args.rotate_all)
    except (RegistryError, AccessError) as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    print(f"{len(registry)} sensors of {district}: wrote {files.password_file}, {files.acl_file}, "
          f"{files.credentials_file} (secret, mode 0600), {files.snippet_file}"
          + (f", {files.config_file}" if files.config_file else ""))
    print(f"new passwords: {len(files.new_users)}"
          + (f" ({', '.join(files.new_users)})" if 0 < len(files.new_users) <= 10 else "")
          + (f"; removed users no longer registered: {', '.join(files.dropped_users)}" if files.dropped_users else ""))
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from .auth import WeakPassword, hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        print(hash_password(password))
    except WeakPassword as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["sim", "ardupilot"]:
        # its options (and --help) belong to the SITL launcher, passed on untouched
        from sitl.ardupilot import main as ardupilot_main

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        raise SystemExit(ardupilot_main(argv[2:], prog="yingji sim ardupilot"))
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the embedded broker's state machine narrates every step at INFO
        for noisy in ("transitions", "amqtt"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = None
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":
    sys.exit(main())
