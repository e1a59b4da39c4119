"""The drivers' small exception family: the runtime catches ``BusError`` at one place to reach the safe state.

Every message names the port, the motor(s) and, where there is one, the register, so a user reading one line
knows which cable, which servo and which operation failed.
"""

from __future__ import annotations

from typing import Iterable

try:
    import termios

    # What serial I/O raises when a port goes away: pyserial's SerialException is an OSError, but some of its
    # calls (reset_input_buffer on a vanished pty or unplugged adapter) let termios.error through.
    SERIAL_IO_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)
except ImportError:  # Windows
    SERIAL_IO_ERRORS = (OSError,)


class BusError(Exception):
    """A bus operation failed. Carries ``port``, ``motors`` (names) and ``register`` for the handler."""

    def __init__(self, message: str, *, port: str | None = None, motors: Iterable[str] = (),
                 register: str | None = None):
        self.port = port
        self.motors = tuple(motors)
        self.register = register
        self.detail = message
        super().__init__(self._format(message))

    def add_context(self, *, port: str | None = None, register: str | None = None) -> "BusError":
        """Fill in what the raising layer did not know (the bus adds the port, the operation its register)."""
        self.port = self.port or port
        self.register = self.register or register
        self.args = (self._format(self.detail),)
        return self

    def _format(self, message: str) -> str:
        where = []
        if self.port:
            where.append(f"port {self.port}")
        if self.motors:
            where.append(("motor " if len(self.motors) == 1 else "motors ") + ", ".join(self.motors))
        if self.register:
            where.append(f"register {self.register}")
        return f"{', '.join(where)}: {message}" if where else message


class BusTimeoutError(BusError):
    """No (complete) reply within the time allowed: a motor is unpowered, unplugged or on another baud rate."""


class ChecksumError(BusError):
    """A reply arrived but was corrupt (bad checksum/CRC, wrong header, wrong ID or length)."""


class MotorStatusError(BusError):
    """A motor answered with error bits set; ``errors`` holds them decoded into words (e.g. "overload")."""

    def __init__(self, message: str, *, errors: Iterable[str] = (), **context):
        self.errors = tuple(errors)
        super().__init__(message, **context)


class ConnectError(BusError):
    """The bus could not be brought up: port missing or busy, a motor missing or of the wrong model."""


class CalibrationError(ValueError):
    """A calibration is invalid (a file, or values a motor cannot store); one line naming the file, motor, field."""


class RobotSpecError(ValueError):
    """A robot definition (TOML file or built-in name) is invalid; the message names the file and the field."""


class RobotStateError(RuntimeError):
    """An operation was called in the wrong hardware state (e.g. writing goals while torque is off)."""


class CameraError(Exception):
    """A camera could not be opened or configured; the message names the camera and its source."""
