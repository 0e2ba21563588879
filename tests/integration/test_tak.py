"""Cursor-on-Target out of the running service: a real UDP listener and a real TCP server on 127.0.0.1
receive the incidents and the simulated copter from ``run_tak``, and the TCP stream survives the
server going away and coming back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from xml.etree import ElementTree as ET

import pytest

from command.incident_life import Report
from command.runtime import Service
from command.tak import Outbox, Outgoing, TakStats, TakTarget, parse_tak_url, run_tak
from tests.fixtures_mqtt import free_port
from tests.fixtures_service import open_rain_incident
from tests.fixtures_sim import free_udp_port

DEADLINE_S = 60.0


class Received:
    """Every CoT event a listener got, in order, with the connection it came on (0 for UDP)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, ET.Element]] = []
        self._new = asyncio.Event()

    def add(self, data: bytes, connection: int = 0) -> None:
        self.events.append((connection, ET.fromstring(data)))
        self._new.set()

    def matching(self, pred: Callable[[ET.Element], bool], *, connection: int | None = None) -> list[ET.Element]:
        return [e for c, e in self.events if (connection is None or c == connection) and pred(e)]

    async def wait_for(self, pred: Callable[[ET.Element], bool], what: str, *, connection: int | None = None,
                       count: int = 1) -> list[ET.Element]:
        try:
            async with asyncio.timeout(DEADLINE_S):
                while len(found := self.matching(pred, connection=connection)) < count:
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            seen = sorted({(c, e.get("uid")) for c, e in self.events})
            raise AssertionError(f"no {what} within {DEADLINE_S} s; received: {seen}") from None
        return found


def uid_is(uid: str) -> Callable[[ET.Element], bool]:
    return lambda e: e.get("uid") == uid


def span_s(e: ET.Element) -> float:
    """stale - start of an event, seconds."""
    return (datetime.fromisoformat(e.get("stale")) - datetime.fromisoformat(e.get("start"))).total_seconds()


async def wait_until(pred: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not pred():
            await asyncio.sleep(0.05)


class UdpListener(asyncio.DatagramProtocol):
    def __init__(self, received: Received) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.add(data)


class TcpServer:
    """A TAK server's plain CoT input: reads the event stream of each connection, splits it into events."""

    def __init__(self, received: Received, port: int) -> None:
        self.received, self.port = received, port
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        buffer = b""
        while chunk := await reader.read(65536):
            buffer += chunk
            while (end := buffer.find(b"</event>")) >= 0:
                self.received.add(buffer[:end + len(b"</event>")], number)
                buffer = buffer[end + len(b"</event>"):]


# --- the address --------------------------------------------------------------------------------


def test_tak_urls_name_udp_or_tcp_host_and_port() -> None:
    assert parse_tak_url("udp://239.2.3.1:6969") == TakTarget("udp", "239.2.3.1", 6969)
    assert parse_tak_url(" tcp://tak.example.org:8087 ") == TakTarget("tcp", "tak.example.org", 8087)
    assert parse_tak_url("tcp://[::1]:8087") == TakTarget("tcp", "::1", 8087)
    assert str(parse_tak_url("tcp://[::1]:8087")) == "tcp://[::1]:8087"


@pytest.mark.parametrize(("url", "message"), [
    (None, "tak_url is not set"),
    ("tak.example.org:8087", "scheme 'tak.example.org' is not supported"),
    ("ssl://tak.example.org:8089", "needs client certificates"),
    ("http://tak.example.org:8080", "scheme 'http' is not supported"),
    ("udp://:4242", "has no host"),
    ("tcp://tak.example.org", "has no port"),
    ("tcp://tak.example.org:port", "Port could not be cast"),
    ("udp://127.0.0.1:70000", "Port out of range"),
    ("tcp://tak.example.org:8087/cot", "only tcp://host:port is understood"),
])
def test_a_malformed_tak_url_is_refused_with_the_problem(url: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tak_url(url)


# --- the outbox ----------------------------------------------------------------------------------


async def test_a_full_outbox_drops_its_oldest_vehicle_update_not_incidents() -> None:
    stats = TakStats()
    box = Outbox(3, stats=stats)
    box.put(Outgoing("v1", b"1", vehicle=True))
    box.put(Outgoing("i1", b"2"))
    box.put(Outgoing("v2", b"3", vehicle=True))
    box.put(Outgoing("i2", b"4"))  # full: v1 goes
    box.put(Outgoing("i3", b"5"))  # full: v2 goes
    assert (stats.dropped, stats.dropped_incidents) == (2, 0)
    box.put(Outgoing("i4", b"6"))  # full of incidents: the oldest goes
    assert (stats.dropped, stats.dropped_incidents) == (2, 1)
    assert [(await box.get()).uid for _ in range(3)] == ["i2", "i3", "i4"]
    box.put_back(Outgoing("i5", b"7"))
    box.put(Outgoing("v3", b"8", vehicle=True))
    assert [(await box.get()).uid for _ in range(2)] == ["i5", "v3"]
    with pytest.raises(ValueError, match="at least one event"):
        Outbox(0)


# --- the service ---------------------------------------------------------------------------------


async def test_a_malformed_tak_url_stops_run_tak_at_once(make_service) -> None:
    service, _ = await make_service()
    service.settings = service.settings.model_copy(update={"tak_url": "tcp://127.0.0.1"})
    with pytest.raises(ValueError, match=r"tak_url 'tcp://127.0.0.1' has no port"):
        await run_tak(service)


async def test_udp_datagrams_carry_the_copter_and_the_incidents_with_their_hazard_areas(make_service,
                                                                                      mosquitto) -> None:
    received = Received()
    port = free_udp_port()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: UdpListener(received), local_addr=("127.0.0.1", port))
    try:
        # set at construction: the service starts the CoT output itself, in its own TaskGroup
        service, _ = await make_service(tak_url=f"udp://127.0.0.1:{port}")
        await copter_is_shown(service, received)

        incident_id = await open_rain_incident(service, mosquitto.url)
        row = service.store.incident(incident_id)
        (marker,) = (await received.wait_for(uid_is(f"yingji-incident-{incident_id}"), "rainstorm marker"))[:1]
        assert (marker.get("type"), marker.get("how"), span_s(marker)) == ("a-h-X-i-m-r", "m-f", 600.0)
        assert (float(marker.find("point").get("lon")), float(marker.find("point").get("lat"))) == \
            (round(row.lon, 7), round(row.lat, 7))
        assert marker.find("detail/contact").get("callsign") == row.detail["title_zh"]
        assert row.detail["title"] in marker.find("detail/remarks").text.split("\n")
        assert not received.matching(uid_is(f"yingji-incident-{incident_id}-hazard-0"))  # a rainstorm has no area

        # a landslide a village monitor reports: a person's marker, and the run-out below the slope as its area
        slope = next(f for f in service.district.facilities if f.kind == "landslide_slope")
        view, _ = service.report_incident(Report(by="monitor-zhang", kind="landslide", level="yellow",
                                                 title="Cracks above the road", title_zh="道路上方坡体开裂",
                                                 source="village_monitor", lon=slope.lon, lat=slope.lat))
        slide = view["id"]
        (marker,) = (await received.wait_for(uid_is(f"yingji-incident-{slide}"), "landslide marker"))[:1]
        assert (marker.get("type"), marker.get("how")) == ("a-h-X-i-g-l", "h-e")
        assert marker.find("detail/contact").get("callsign") == "道路上方坡体开裂"
        (area,) = (await received.wait_for(uid_is(f"yingji-incident-{slide}-hazard-0"), "landslide area"))[:1]
        links = [link.get("point") for link in area.findall("detail/link")]
        assert area.get("type") == "u-d-f" and len(links) >= 4 and links[0] == links[-1]
        assert area.find("detail/strokeColor").get("value") == str(0xFFFFFF00 - (1 << 32))  # yellow

        # a field crew: a friendly team member where its phone puts it; an SOS is sent at once with its note
        service.report_crew_position("crew-luoqi-water", lon=slope.lon, lat=slope.lat, at=None, by="luoqi-zhang")
        crew = await received.wait_for(lambda e: e.get("uid") == "yingji-crew-crew-luoqi-water"
                                       and abs(float(e.find("point").get("lat")) - slope.lat) < 1e-6
                                       and "inside the hazard area of incident" in e.find("detail/remarks").text,
                                       "the crew, inside the landslide's area")
        assert (crew[0].get("type"), crew[0].get("how"), span_s(crew[0])) == ("a-f-G-U-C", "m-g", 600.0)
        service.crew_sos("crew-luoqi-water", by="luoqi-zhang", lon=slope.lon, lat=slope.lat, note="trapped by mud")
        sos = await received.wait_for(lambda e: e.get("uid") == "yingji-crew-crew-luoqi-water"
                                      and "trapped by mud" in (e.find("detail/remarks").text or ""), "the SOS")
        assert sos[0].find("detail/contact").get("callsign") == service.crew_specs["crew-luoqi-water"].name_zh

        # closed: marker and area are deleted from every client
        service.close_incident(slide, by="dispatcher-li", reason="cracks are old, checked on site")
        deletes = await received.wait_for(lambda e: e.get("type") == "t-x-d-d", "the deletes", count=2)
        assert sorted(d.find("detail/link").get("uid") for d in deletes) == \
            [f"yingji-incident-{slide}", f"yingji-incident-{slide}-hazard-0"]
        assert all(d.find("detail/__forcedelete") is not None for d in deletes)
    finally:
        transport.close()


async def copter_is_shown(service: Service, received: Received, *, connection: int | None = None) -> None:
    """UAV-1 arrives as a friendly rotary-wing drone where the fleet has it, its height AMSL as hae."""
    (event,) = (await received.wait_for(uid_is("yingji-vehicle-UAV-1"), "UAV-1", connection=connection))[:1]
    assert (event.get("type"), event.get("how"), span_s(event)) == ("a-f-A-M-H-Q", "m-g", 30.0)
    state = service.fleet.states()["UAV-1"]
    spec = service.vehicle_specs["UAV-1"]
    point = event.find("point")
    # on the ground at its base (the fleet's position to 1e-4 degree, ~10 m, as it settles)
    assert float(point.get("lon")) == pytest.approx(state["lon"], abs=1e-4)
    assert float(point.get("lat")) == pytest.approx(state["lat"], abs=1e-4)
    assert float(point.get("lon")) == pytest.approx(spec.base_lon, abs=1e-3)
    assert float(point.get("hae")) == pytest.approx(state["alt_amsl_m"], abs=2.0)
    assert (point.get("ce"), point.get("le")) == ("9999999.0", "9999999.0")
    assert event.find("detail/contact").get("callsign") == "UAV-1"
    assert int(event.find("detail/status").get("battery")) == pytest.approx(state["battery_pct"], abs=1.0)


async def test_a_tcp_stream_reconnects_and_carries_on_after_the_server_comes_back(make_service, mosquitto) -> None:
    received = Received()
    server = TcpServer(received, free_port())
    await server.start()
    service, _ = await make_service()
    service.settings = service.settings.model_copy(update={"tak_url": f"tcp://127.0.0.1:{server.port}"})
    stats = TakStats()
    task = asyncio.create_task(run_tak(service, stats=stats))
    try:
        await copter_is_shown(service, received, connection=1)
        vehicles = await received.wait_for(uid_is("yingji-vehicle-UAV-1"), "three UAV-1 updates", connection=1,
                                           count=3)
        # telemetry comes twice a second: one in two is held back (at most one event per vehicle per second)
        times = [datetime.fromisoformat(e.get("time")) for e in vehicles]
        assert all((b - a).total_seconds() >= 0.99 for a, b in zip(times, times[1:]))
        assert stats.throttled > 0 and stats.connects == 1

        await server.stop()  # the TAK server goes away
        await wait_until(lambda: not stats.connected, "the lost connection to be noticed")
        incident_id = await open_rain_incident(service, mosquitto.url)  # happens while nobody listens
        assert server.connections == 1

        await server.start()  # back: the stream goes on, on a new connection
        marker = uid_is(f"yingji-incident-{incident_id}")
        (event,) = (await received.wait_for(marker, "the rainstorm marker after reconnecting", connection=2))[:1]
        assert event.get("type") == "a-h-X-i-m-r"
        await received.wait_for(uid_is("yingji-vehicle-UAV-1"), "UAV-1 after reconnecting", connection=2)
        assert stats.connects == 2 and stats.failures >= 1 and stats.errors == 0

        service.close_incident(incident_id, by="dispatcher-li", reason="rain stopped")
        (delete,) = (await received.wait_for(lambda e: e.get("type") == "t-x-d-d", "the marker's delete",
                                             connection=2))[:1]
        assert delete.find("detail/link").attrib == {"uid": f"yingji-incident-{incident_id}", "relation": "p-p",
                                                     "type": "a-h-X-i-m-r"}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.stop()
