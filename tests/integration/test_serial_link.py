"""uav.link over a serial port: a real pseudo-terminal pair, a MAVLink autopilot on the far end.

The device path is a symlink to the pty's slave side, as udev's ``/dev/serial/by-id/...``
links are to a USB radio: "unplugging" closes the pty and removes the link, "plugging
back" makes a new pty behind the same path (a new /dev/pts/N, as a re-enumerated USB
device gets), so the reconnect goes through the real open/backoff path of the link.
"""

from __future__ import annotations

import asyncio
import os
import tty
from functools import partial
from pathlib import Path

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from uav.errors import CommandUnsupported
from uav.link import open_link
from uav.vehicle import Vehicle

from tests.fixtures_sim import poll_until

DEADLINE_S = 15.0  # generous ceiling for a loaded machine, not a measurement


class PtyAutopilot:
    """A minimal autopilot (system 1, copter) on the master side of a pty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gcs_heartbeats = 0
        self.commands: list[int] = []
        self._mav = mav.MAVLink(None, srcSystem=1, srcComponent=1)
        self._parser = mav.MAVLink(None)
        self._parser.robust_parsing = True
        self._master = -1
        self._slave = -1

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path.unlink(missing_ok=True)
        self.path.symlink_to(os.ttyname(self._slave))
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)

    def unplug(self) -> None:
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self.path.unlink(missing_ok=True)

    def _send(self, msg: mav.MAVLink_message) -> None:
        if self.plugged:
            os.write(self._master, msg.pack(self._mav))
            self._mav.seq = (self._mav.seq + 1) % 256

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        for msg in self._parser.parse_buffer(data) or []:
            kind = msg.get_type()
            if kind == "HEARTBEAT" and msg.get_srcSystem() == 255:
                self.gcs_heartbeats += 1
            elif kind == "COMMAND_LONG":
                self.commands.append(msg.command)
                result = (mav.MAV_RESULT_UNSUPPORTED if msg.command == mav.MAV_CMD_DO_WINCH
                          else mav.MAV_RESULT_ACCEPTED)
                self._send(mav.MAVLink_command_ack_message(
                    msg.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()))

    async def heartbeats(self) -> None:
        while True:
            self._send(mav.MAVLink_heartbeat_message(
                mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA,
                mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4, mav.MAV_STATE_STANDBY, 3))
            await asyncio.sleep(0.2)


_until = partial(poll_until, deadline_s=DEADLINE_S)


async def test_serial_link_heartbeats_commands_unplug_and_replug(tmp_path: Path) -> None:
    device = tmp_path / "ttyRADIO0"
    peer = PtyAutopilot(device)
    peer.plug()
    link = await open_link(f"serial:{device}:57600", connect=False)
    vehicle = Vehicle(link, 1, name="serial-copter", vehicle_type="copter",
                      command_timeout_s=0.5)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(link.run()), tg.create_task(vehicle.run()),
                     tg.create_task(peer.heartbeats())]
            try:
                # heartbeats both ways
                await _until(lambda: vehicle.state.heartbeat_seen, "vehicle heartbeat")
                await _until(lambda: peer.gcs_heartbeats >= 2, "GCS heartbeat at the device")
                assert vehicle.state.mode == "GUIDED"
                # a command round trip, and a refusal mapped to its typed error
                await vehicle.command(mav.MAV_CMD_DO_SET_HOME, 1, what="set home here")
                assert mav.MAV_CMD_DO_SET_HOME in peer.commands
                with pytest.raises(CommandUnsupported):
                    await vehicle.command(mav.MAV_CMD_DO_WINCH, 1)

                # unplug: the link notices and reports it
                peer.unplug()
                await _until(lambda: link.disconnects == 1, "disconnect noticed")
                await asyncio.sleep(0.3)  # at least one re-open attempt fails meanwhile
                assert link.disconnects == 1

                # plug back at the same path: the link re-opens it by itself
                before = peer.gcs_heartbeats
                peer.plug()
                await _until(lambda: peer.gcs_heartbeats > before, "GCS heartbeat after re-plug")
                await vehicle.command(mav.MAV_CMD_DO_SET_HOME, 1, what="set home here")
                assert link.disconnects == 1
                assert link.bad_packets == 0
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await link.close()
        if peer.plugged:
            peer.unplug()


async def test_serial_link_missing_device_is_a_link_error(tmp_path: Path) -> None:
    from uav.errors import LinkError

    with pytest.raises(LinkError, match="cannot open"):
        await open_link(f"serial:{tmp_path / 'nothing'}:57600")
