"""Errors of the ``uav`` room.

Tree::

    UavError
    ├── LinkError                    transport problems (bad URL, socket, closed link)
    │   └── LinkLost                 the vehicle stopped talking (no heartbeat / no answer)
    └── VehicleError                 the vehicle said no, or never said yes
        ├── CommandError             a COMMAND_LONG/INT ended badly (``.command``, ``.result``)
        │   ├── CommandDenied              MAV_RESULT_DENIED
        │   ├── CommandTemporarilyRejected MAV_RESULT_TEMPORARILY_REJECTED
        │   ├── CommandUnsupported         MAV_RESULT_UNSUPPORTED (and *_ONLY / frame variants)
        │   ├── CommandFailed              MAV_RESULT_FAILED / CANCELLED (carries the STATUSTEXT)
        │   └── CommandTimeout             no COMMAND_ACK after every retry
        ├── ModeChangeFailed         mode refused or not confirmed by HEARTBEAT
        ├── MissionError
        │   ├── MissionRejected      MISSION_ACK other than ACCEPTED (``.result_name``)
        │   └── MissionTimeout       the mission handshake stalled
        ├── ParamError               the parameter protocol did not give the value asked for
        │   ├── ParamTimeout         no PARAM_VALUE in time (read, list or set echo)
        │   │   └── ParamNotFound    no answer to a read by name while the vehicle talks
        │   └── ParamSetFailed       the echoed value differs from the value set
        ├── PreflightFailed          a pre-flight check failed (``.report``)
        ├── CameraError              a camera/gimbal request failed (uav.camera)
        │   └── CaptureTimeout       capture accepted, no CAMERA_IMAGE_CAPTURED in time
        ├── LogError                 on-board log list/download failed (uav.logs)
        │   ├── LogDownloadRefused   the vehicle is armed (ArduPilot ignores log requests)
        │   ├── LogNotFound          no log with that id on the vehicle
        │   └── LogTimeout           the vehicle stopped answering the log protocol
        ├── UnknownMode              a mode name not in the vehicle's table (also a ValueError)
        ├── WrongMode                a request that needs another flight mode first
        ├── VehicleNotReady          ``wait_ready`` ran out of time
        └── VehicleUnavailable       the fleet does not know the vehicle, or it is not heard
"""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mav

__all__ = [
    "UavError", "LinkError", "LinkLost", "VehicleError", "CommandError", "CommandDenied",
    "CommandTemporarilyRejected", "CommandUnsupported", "CommandFailed", "CommandTimeout",
    "ModeChangeFailed", "MissionError", "MissionRejected", "MissionTimeout", "UnknownMode",
    "WrongMode", "VehicleNotReady", "VehicleUnavailable", "ParamError", "ParamTimeout",
    "ParamNotFound", "ParamSetFailed", "PreflightFailed", "command_name", "result_name",
    "error_for_result", "CameraError", "CaptureTimeout", "LogError", "LogDownloadRefused",
    "LogNotFound", "LogTimeout",
]


class UavError(Exception):
    """Base of every error raised by the ``uav`` room."""


class LinkError(UavError):
    """The MAVLink transport failed or was misused."""


class LinkLost(LinkError):
    """The vehicle is not heard any more."""


class VehicleError(UavError):
    """The vehicle refused, failed or never confirmed a request."""


class CommandError(VehicleError):
    """A MAVLink command ended without MAV_RESULT_ACCEPTED."""

    def __init__(self, message: str, *, command: int, result: int | None = None,
                 statustext: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.result = result
        self.statustext = statustext


class CommandDenied(CommandError):
    """MAV_RESULT_DENIED: the command is not allowed now (wrong state, out of range)."""


class CommandTemporarilyRejected(CommandError):
    """MAV_RESULT_TEMPORARILY_REJECTED: busy; the same command may work later."""


class CommandUnsupported(CommandError):
    """MAV_RESULT_UNSUPPORTED: the vehicle does not implement the command."""


class CommandFailed(CommandError):
    """MAV_RESULT_FAILED: accepted in principle but failed; ``statustext`` says why."""


class CommandTimeout(CommandError):
    """No COMMAND_ACK arrived within the deadline after every retry."""


class ModeChangeFailed(VehicleError):
    """A mode change was refused, or the HEARTBEAT never showed the new mode."""

    def __init__(self, message: str, *, mode: str, statustext: str | None = None) -> None:
        super().__init__(message)
        self.mode = mode
        self.statustext = statustext


class MissionError(VehicleError):
    """The mission protocol did not complete."""


class MissionRejected(MissionError):
    """The vehicle answered MISSION_ACK with a result other than MAV_MISSION_ACCEPTED."""

    def __init__(self, message: str, *, result: int) -> None:
        super().__init__(message)
        self.result = result
        self.result_name = mission_result_name(result)


class MissionTimeout(MissionError):
    """A mission upload, download or clear stalled past its deadline."""


class ParamError(VehicleError):
    """The parameter protocol (https://mavlink.io/en/services/parameter.html) failed."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class ParamTimeout(ParamError):
    """No PARAM_VALUE arrived in time after every retry."""


class ParamNotFound(ParamTimeout):
    """A read by name got no answer while the vehicle was heard: ArduPilot's only answer
    to a name it does not have is silence (FACTS)."""


class ParamSetFailed(ParamError):
    """PARAM_SET was echoed with another value (read-only, clamped or refused)."""

    def __init__(self, message: str, *, name: str, wanted: float, got: float | None,
                 statustext: str | None = None) -> None:
        super().__init__(message, name=name)
        self.wanted = wanted
        self.got = got
        self.statustext = statustext


class PreflightFailed(VehicleError):
    """At least one pre-flight check failed; ``report`` lists every check and why."""

    def __init__(self, message: str, *, report: object) -> None:
        super().__init__(message)
        self.report = report


class CameraError(VehicleError):
    """A camera or gimbal request (MAVLink camera protocol) did not give what was asked."""


class CaptureTimeout(CameraError):
    """A capture was acknowledged but no CAMERA_IMAGE_CAPTURED arrived in time."""


class LogError(VehicleError):
    """The on-board log protocol (LOG_REQUEST_LIST / LOG_REQUEST_DATA) did not complete."""


class LogDownloadRefused(LogError):
    """The vehicle is armed: ArduPilot ignores every log request until it is disarmed
    (AP_Logger::handle_log_message, "Disarm for log download")."""


class LogNotFound(LogError):
    """The vehicle has no log with the id asked for."""


class LogTimeout(LogError):
    """The vehicle stopped sending LOG_ENTRY / LOG_DATA before the list or log was whole."""


class UnknownMode(VehicleError, ValueError):
    """A flight mode name that the vehicle type's table does not hold."""


class WrongMode(VehicleError):
    """The request needs another flight mode (e.g. ``goto`` needs GUIDED)."""


class VehicleNotReady(VehicleError):
    """``wait_ready`` timed out (no heartbeat, no position or EKF not ready)."""


class VehicleUnavailable(VehicleError):
    """The fleet does not know the vehicle, never heard it, or lost it."""


def _enum_name(enum: str, value: int) -> str:
    entry = mav.enums.get(enum, {}).get(value)
    return entry.name if entry is not None else f"{enum}_{value}"


def command_name(command: int) -> str:
    """``22`` → ``"MAV_CMD_NAV_TAKEOFF"`` (unknown numbers stay readable)."""
    return _enum_name("MAV_CMD", command)


_LATER_RESULTS = {6: "MAV_RESULT_CANCELLED", 9: "MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME"}


def result_name(result: int) -> str:
    """``4`` → ``"MAV_RESULT_FAILED"``."""
    return _LATER_RESULTS.get(result) or _enum_name("MAV_RESULT", result)


def mission_result_name(result: int) -> str:
    """``2`` → ``"MAV_MISSION_UNSUPPORTED_FRAME"``."""
    return _enum_name("MAV_MISSION_RESULT", result)


# MAV_RESULT → leaf error (https://mavlink.io/en/messages/common.html#MAV_RESULT).
# IN_PROGRESS (5) is not an end state and has no entry: the caller keeps waiting.
_RESULT_ERRORS: dict[int, type[CommandError]] = {
    mav.MAV_RESULT_TEMPORARILY_REJECTED: CommandTemporarilyRejected,
    mav.MAV_RESULT_DENIED: CommandDenied,
    mav.MAV_RESULT_UNSUPPORTED: CommandUnsupported,
    mav.MAV_RESULT_FAILED: CommandFailed,
    6: CommandFailed,  # MAV_RESULT_CANCELLED (newer common.xml than this dialect)
    mav.MAV_RESULT_COMMAND_LONG_ONLY: CommandUnsupported,
    mav.MAV_RESULT_COMMAND_INT_ONLY: CommandUnsupported,
    9: CommandUnsupported,  # MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME (newer common.xml)
}


def error_for_result(command: int, result: int, *, statustext: str | None = None,
                     what: str | None = None) -> CommandError | None:
    """The typed error for a final COMMAND_ACK result, or None for ACCEPTED."""
    if result == mav.MAV_RESULT_ACCEPTED:
        return None
    cls = _RESULT_ERRORS.get(result, CommandFailed)
    label = what or command_name(command)
    message = f"{label}: {result_name(result)}"
    if statustext:
        message += f" ({statustext})"
    return cls(message, command=command, result=result, statustext=statustext)
