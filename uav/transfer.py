"""The MAVLink mission protocol, ground-station side, for missions, fences and rally points.

https://mavlink.io/en/services/mission.html — one implementation for the three
MAV_MISSION_TYPEs (MISSION 0, FENCE 1, RALLY 2); the caller decides what goes at which
sequence (a mission's home slot at 0 is added by ``Vehicle.upload_mission``).

Upload: MISSION_COUNT, then the vehicle asks for each item (ArduPilot: MISSION_REQUEST,
FACTS) and every request is answered, again if repeated, until MISSION_ACK. If the vehicle
goes quiet the last asked item is sent again; if the final ACK is lost, a MISSION_COUNT
probe confirms the stored count. Download: MISSION_REQUEST_LIST, then MISSION_REQUEST_INT
for each sequence, each re-sent on its own timeout (a stalled download resumes where it
stopped), then our MISSION_ACK. Every exchange runs under a per-request timeout and an
overall deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

from pymavlink.dialects.v20 import ardupilotmega as mav

from uav import mission as missions
from uav.errors import LinkLost, MissionRejected, MissionTimeout, mission_result_name
from uav.link import MavLink, Subscription
from uav.mission import MissionItem

__all__ = ["MissionTransfer", "MISSION", "FENCE", "RALLY", "type_label"]

log = logging.getLogger(__name__)

MISSION: Final = mav.MAV_MISSION_TYPE_MISSION
FENCE: Final = mav.MAV_MISSION_TYPE_FENCE
RALLY: Final = mav.MAV_MISSION_TYPE_RALLY
_LABELS: Final = {MISSION: "mission", FENCE: "fence", RALLY: "rally"}


def type_label(mission_type: int) -> str:
    """``1`` → ``"fence"``."""
    return _LABELS.get(mission_type, f"mission type {mission_type}")


def _clean(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).rstrip("\x00").strip()


def _is_item(msg: Any, *, seq: int) -> bool:
    return msg.get_type() in ("MISSION_ITEM_INT", "MISSION_ITEM") and msg.seq == seq


class MissionTransfer:
    """Mission-protocol client for one vehicle; one transfer at a time."""

    def __init__(self, link: MavLink, system_id: int, target_component: int, *, name: str,
                 lost: Callable[[], bool]) -> None:
        self.link = link
        self.system_id = system_id
        self.target_component = target_component
        self.name = name
        self._lost = lost
        self._lock = asyncio.Lock()

    def _send(self, msg: Any) -> None:
        self.link.send(msg, system_id=self.system_id)

    # ---- upload --------------------------------------------------------------------------

    async def upload(self, mission_type: int, items: Sequence[MissionItem], *,
                     timeout_s: float = 30.0, request_timeout_s: float = 1.5) -> None:
        """Upload ``items`` as sequence 0..n-1; MissionRejected / MissionTimeout / LinkLost."""
        label = type_label(mission_type)
        wire = [missions.encode_item_int(item, seq, target_system=self.system_id,
                                         target_component=self.target_component,
                                         mission_type=mission_type)
                for seq, item in enumerate(items)]
        count_msg = self.link.mav.mission_count_encode(
            self.system_id, self.target_component, len(wire), mission_type)
        async with self._lock:
            with self.link.subscribe(self.system_id, maxsize=256, types={
                    "MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK", "MISSION_COUNT",
                    "STATUSTEXT"}) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._upload(sub, mission_type, count_msg, wire,
                                           request_timeout_s)
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: {label} upload ({len(wire)} items) did "
                                         f"not finish within {timeout_s:g} s") from None

    async def _upload(self, sub: Subscription, mission_type: int, count_msg: Any,
                      wire: list[Any], request_timeout_s: float) -> None:
        label = type_label(mission_type)
        self._send(count_msg)
        requested: set[int] = set()
        last_asked: int | None = None
        probing = False
        probed = False  # a probe was sent in this upload: its DENIED answer may come late
        text: str | None = None
        while True:
            try:
                async with asyncio.timeout(request_timeout_s):
                    msg = await sub.get()
            except TimeoutError:
                if self._lost():
                    raise LinkLost(f"{self.name}: lost during {label} upload") from None
                if last_asked is None:
                    self._send(count_msg)  # COUNT went missing
                elif len(requested) == len(wire):
                    # Every item was asked for: the final ACK may be lost. Ask for the count.
                    probing = probed = True
                    self._send(self.link.mav.mission_request_list_encode(
                        self.system_id, self.target_component, mission_type))
                else:
                    self._send(wire[last_asked])  # our item or its re-request went missing
                continue
            kind = msg.get_type()
            if kind == "STATUSTEXT":
                text = _clean(msg.text)
                continue
            if getattr(msg, "mission_type", 0) != mission_type:
                continue
            if kind in ("MISSION_REQUEST", "MISSION_REQUEST_INT"):
                if 0 <= msg.seq < len(wire):
                    requested.add(msg.seq)
                    last_asked = msg.seq
                    probing = False
                    self._send(wire[msg.seq])
                else:
                    log.warning("%s: vehicle asked for %s item %d of %d", self.name, label,
                                msg.seq, len(wire))
                continue
            if kind == "MISSION_COUNT":
                if probing and msg.count == len(wire):
                    log.info("%s: %s upload ACK lost; the vehicle holds %d items", self.name,
                             label, msg.count)
                    self._send(self.link.mav.mission_ack_encode(  # end the probe's download
                        self.system_id, self.target_component, mav.MAV_MISSION_ACCEPTED,
                        mission_type))
                    return
                continue
            # MISSION_ACK
            if msg.type == mav.MAV_MISSION_ACCEPTED:
                if len(requested) == len(wire):
                    return
                log.debug("%s: early ACCEPTED ack ignored (%d/%d asked)", self.name,
                          len(requested), len(wire))
                continue
            if probing and msg.type == mav.MAV_MISSION_DENIED and last_asked is not None:
                probing = False  # still receiving: our last item was lost, send it again
                self._send(wire[last_asked])
                continue
            if probed and msg.type == mav.MAV_MISSION_DENIED:
                # The answer to a probe that crossed the vehicle's own re-request (already
                # answered): the upload goes on.
                log.debug("%s: %s upload: late DENIED to a probe ignored", self.name, label)
                continue
            if msg.type == mav.MAV_MISSION_INVALID_SEQUENCE:
                # ArduPilot (MissionItemProtocol::handle_mission_item) answers a duplicate or
                # out-of-order item so, but keeps receiving and re-requests what it needs:
                # under packet loss it is our resend crossing its re-request, not the end.
                log.debug("%s: %s upload: vehicle saw an out-of-sequence item; continuing",
                          self.name, label)
                continue
            reason = f" ({text})" if text else ""
            raise MissionRejected(f"{self.name}: {label} rejected: "
                                  f"{mission_result_name(msg.type)}{reason}", result=msg.type)

    # ---- download ------------------------------------------------------------------------

    async def download(self, mission_type: int, *, timeout_s: float = 30.0,
                       request_timeout_s: float = 1.5) -> list[MissionItem]:
        """Every stored item of ``mission_type`` (sequence 0..n-1)."""
        label = type_label(mission_type)
        async with self._lock:
            with self.link.subscribe(self.system_id, maxsize=256, types={
                    "MISSION_COUNT", "MISSION_ITEM_INT", "MISSION_ITEM", "MISSION_ACK"}) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        return await self._download(sub, mission_type, request_timeout_s)
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: {label} download did not finish "
                                         f"within {timeout_s:g} s") from None

    async def _exchange(self, sub: Subscription, mission_type: int, request: Any,
                        accept: Callable[[Any], bool], request_timeout_s: float,
                        what: str) -> Any:
        """Send ``request`` until a message satisfying ``accept`` comes (or the link is lost)."""
        while True:
            self._send(request)
            try:
                async with asyncio.timeout(request_timeout_s):
                    while True:
                        msg = await sub.get()
                        if getattr(msg, "mission_type", 0) != mission_type:
                            continue
                        if msg.get_type() == "MISSION_ACK" and msg.type != mav.MAV_MISSION_ACCEPTED:
                            raise MissionRejected(f"{self.name}: {what}: "
                                                  f"{mission_result_name(msg.type)}",
                                                  result=msg.type)
                        if accept(msg):
                            return msg
            except TimeoutError:
                if self._lost():
                    raise LinkLost(f"{self.name}: lost during {what}") from None
                log.debug("%s: %s: no answer, asking again", self.name, what)

    async def _download(self, sub: Subscription, mission_type: int,
                        request_timeout_s: float) -> list[MissionItem]:
        tid, tcomp, label = self.system_id, self.target_component, type_label(mission_type)
        count_msg = await self._exchange(
            sub, mission_type, self.link.mav.mission_request_list_encode(tid, tcomp, mission_type),
            lambda m: m.get_type() == "MISSION_COUNT", request_timeout_s, f"{label} download")
        items: list[MissionItem] = []
        for seq in range(count_msg.count):
            msg = await self._exchange(
                sub, mission_type,
                self.link.mav.mission_request_int_encode(tid, tcomp, seq, mission_type),
                partial(_is_item, seq=seq), request_timeout_s, f"{label} item {seq}")
            items.append(missions.decode_item(msg))
        self._send(self.link.mav.mission_ack_encode(tid, tcomp, mav.MAV_MISSION_ACCEPTED,
                                                    mission_type))
        return items

    # ---- clear ---------------------------------------------------------------------------

    async def clear(self, mission_type: int, *, timeout_s: float = 10.0,
                    request_timeout_s: float = 1.5) -> None:
        """MISSION_CLEAR_ALL of ``mission_type``, awaiting an ACCEPTED MISSION_ACK."""
        label = type_label(mission_type)
        async with self._lock:
            with self.link.subscribe(self.system_id, types={"MISSION_ACK"}, maxsize=16) as sub:
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._exchange(
                            sub, mission_type, self.link.mav.mission_clear_all_encode(
                                self.system_id, self.target_component, mission_type),
                            lambda m: m.get_type() == "MISSION_ACK", request_timeout_s,
                            f"{label} clear")
                except TimeoutError:
                    raise MissionTimeout(f"{self.name}: {label} clear not acknowledged within "
                                         f"{timeout_s:g} s") from None
