"""Serial transport for :class:`uav.link.MavLink` (``serial:PATH:BAUD``), without threads.

The port is opened and configured by pyserial (raw mode, baud rate), then read and
written through its file descriptor on the event loop: ``loop.add_reader`` delivers
chunks to ``MavLink.feed`` and writes go straight to the descriptor, the rest queued in
a bounded buffer drained by ``loop.add_writer``. A device that disappears (USB radio
unplugged: the read fails with EIO, or returns end-of-file) closes the transport; the
link's ``run()`` then re-opens the same path with backoff, as it does for TCP.

Paths that survive a re-plug are the udev links (``/dev/serial/by-id/...``): use them in
the fleet file rather than ``/dev/ttyUSB0``, whose number can change.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import TYPE_CHECKING, Any, Final

import serial

if TYPE_CHECKING:
    from uav.link import MavLink

__all__ = ["SerialTransport", "open_serial", "parse_serial_url", "MAX_WRITE_BUFFER_BYTES"]

log = logging.getLogger(__name__)

# Bytes queued for a slow port before new packets are dropped (whole packets only, so
# the stream never carries a cut packet). 57600 baud moves ~5.7 kB/s: 16 KiB is ~3 s of
# backlog, beyond which commands would arrive too late to mean anything.
MAX_WRITE_BUFFER_BYTES: Final = 16 * 1024
READ_CHUNK_BYTES: Final = 4096  # FACTS: parse in chunks, not byte by byte
# Standard rates a MAVLink telemetry radio or autopilot UART uses (SERIALn_BAUD).
COMMON_BAUDS: Final = (9600, 19200, 38400, 57600, 111100, 115200, 230400, 460800, 500000,
                       921600, 1500000)


def parse_serial_url(url: str) -> tuple[str, int]:
    """``"serial:/dev/ttyUSB0:57600"`` → ``("/dev/ttyUSB0", 57600)``.

    Parsed from the right, so a path containing ``:`` still works. ValueError with the
    reason for anything else.
    """
    text = url.strip()
    if not text.startswith("serial:"):
        raise ValueError(f"bad serial URL {url!r}: expected serial:PATH:BAUD")
    path, sep, baud_text = text[len("serial:"):].rpartition(":")
    if not sep or not path:
        raise ValueError(f"bad serial URL {url!r}: expected serial:PATH:BAUD "
                         f"(e.g. serial:/dev/ttyUSB0:57600)")
    try:
        baud = int(baud_text)
    except ValueError:
        raise ValueError(f"bad serial URL {url!r}: baud rate {baud_text!r} is not a "
                         f"number") from None
    if not 50 <= baud <= 12_000_000:
        raise ValueError(f"bad serial URL {url!r}: baud rate {baud} out of range")
    return path, baud


class SerialTransport:
    """The part of ``asyncio.Transport`` that MavLink uses, over a serial port's fd."""

    def __init__(self, link: MavLink, port: serial.Serial, path: str) -> None:
        self._link = link
        self._port = port
        self._path = path
        self._fd = port.fileno()
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._out = bytearray()
        self._closing = False
        self.dropped_bytes = 0
        self.lost = self._loop.create_future()  # set to the reason when the device goes
        self._loop.add_reader(self._fd, self._on_readable)

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": (self._path, self._port.baudrate),
                "peername": (self._path, self._port.baudrate)}.get(name, default)

    def write(self, data: bytes) -> None:
        """Write now what the port takes; queue the rest (bounded, whole packets)."""
        if self._closing:
            self._link.send_errors += 1
            return
        if not self._out:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            except OSError as err:
                self._gone(err)
                return
            data = data[written:]
            if not data:
                return
            self._loop.add_writer(self._fd, self._on_writable)
        if len(self._out) + len(data) > MAX_WRITE_BUFFER_BYTES:
            self.dropped_bytes += len(data)
            self._link.send_errors += 1
            log.warning("%s: write buffer full (%d bytes): packet dropped", self._path,
                        len(self._out))
            return
        self._out += data

    def _on_writable(self) -> None:
        try:
            written = os.write(self._fd, self._out)
        except BlockingIOError:
            return
        except OSError as err:
            self._gone(err)
            return
        del self._out[:written]
        if not self._out:
            self._loop.remove_writer(self._fd)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError as err:
            # EIO: the device (or the far end of a pty) went away.
            self._gone(err)
            return
        if not data:
            self._gone(None)
            return
        self._link.feed(data, None)

    def _gone(self, err: OSError | None) -> None:
        reason = (f"{errno.errorcode.get(err.errno or 0, err.errno)}: {err.strerror}"
                  if err is not None else "end of file")
        log.warning("%s: serial device lost (%s)", self._path, reason)
        self._link.disconnects += 1
        self.close()
        if not self.lost.done():
            self.lost.set_result(reason)

    def close(self) -> None:
        """Stop reading and writing and close the port (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._out.clear()
        try:
            self._port.close()
        except (OSError, serial.SerialException) as err:
            log.debug("%s: close: %s", self._path, err)


def open_serial(link: MavLink, path: str, baud: int) -> SerialTransport:
    """Open ``path`` at ``baud`` (8N1, raw, no flow control); OSError if it is not there.

    ``serial.Serial(..., timeout=0)`` opens with O_NONBLOCK and configures termios; no
    read or write ever blocks the loop afterwards.
    """
    try:
        port = serial.Serial(path, baud, timeout=0, write_timeout=0, exclusive=True)
    except serial.SerialException as err:
        raise OSError(err.errno or errno.ENODEV, f"cannot open {path}: {err}") from err
    except ValueError as err:  # pyserial: a baud rate the driver refuses
        raise OSError(errno.EINVAL, f"cannot open {path} at {baud} baud: {err}") from err
    log.info("serial:%s:%d: open", path, baud)
    return SerialTransport(link, port, path)
