"""One bus API for both servo families; the bus speaks raw (signed, decoded) integers, never user units.

A ``MotorBus`` owns one serial port and the motors of one ``BusSpec``. The public methods look up registers by
name in the control tables, encode/decode sign conventions, run the family's transaction through the one
retry helper, and raise the ``BusError`` family with the port, motor names and register filled in.
Subclasses (``FeetechBus``, ``DynamixelBus``) only move bytes: the ``_ping/_read/_write/_sync_read/
_sync_write`` hooks take motor IDs and unsigned field values, and make exactly one attempt.

Hardware states: disconnected -> connected (port open, every motor answered with the right model).
Torque is the caller's (``Robot``'s) business, except that ``disconnect()`` turns it off by default.
"""

from __future__ import annotations

import functools
import os
import select
from typing import Iterable, Mapping

from . import dynamixel_protocol, feetech_protocol
from .errors import BusError, ConnectError, MotorStatusError
from .retry import with_retries
from .robots import BusSpec, MotorSpec
from .tables import MotorModel, Reg, motor_model, reg_label

DEFAULT_TIMEOUT_S = 0.02  # per try, on top of the emulated wire time: covers OS scheduling and USB latency
DEFAULT_RETRIES = 2
DEFAULT_BUDGET_S = 0.25  # all tries of one operation together
# Status words that report the motor's condition, not a refused instruction (the instruction was carried out).
HARDWARE_ERROR_WORDS = frozenset(feetech_protocol.ERROR_BITS.values()) | frozenset(
    dynamixel_protocol.HARDWARE_ERROR_BITS.values()) | {"hardware alert"}


class MotorBus:
    """Base of ``FeetechBus`` and ``DynamixelBus``: ``bus = FeetechBus(bus_spec, "/dev/ttyACM0")``."""

    family = ""

    def __init__(self, spec: BusSpec, port: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 retries: int = DEFAULT_RETRIES, budget_s: float = DEFAULT_BUDGET_S):
        if spec.family != self.family:
            raise ValueError(f"bus '{spec.name}' is a {spec.family} bus, not {self.family}")
        self.spec = spec
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.budget_s = budget_s
        self.motors: dict[str, MotorSpec] = {m.name: m for m in spec.motors}
        self.models: dict[str, MotorModel] = {m.name: motor_model(m.model) for m in spec.motors}
        self._names_by_id = {m.id: m.name for m in spec.motors}
        self._connected = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the port exclusively, ping every motor and check its model number.

        Raises ConnectError naming the port and every missing or wrong motor; the port is closed again then.
        """
        if self._connected:
            return
        self._open()
        try:
            problems, bad = [], []
            for name, motor in self.motors.items():
                expected = self.models[name]
                try:
                    number = self._retry(lambda m=motor: self._ping(m.id), [motor.id], None)
                except BusError as exc:
                    problems.append(f"{name} (ID {motor.id}) gave no valid answer to ping: {exc.detail}")
                    bad.append(name)
                    continue
                if number != expected.model_number:
                    problems.append(f"{name} (ID {motor.id}) is model number {number}, expected "
                                    f"{expected.model_number} ({expected.name})")
                    bad.append(name)
            if len(bad) == len(self.motors) and not any("model number" in p for p in problems):
                raise ConnectError(self._silence_message(), port=self.port)
            if problems:
                raise ConnectError("; ".join(problems), port=self.port, motors=bad)
            self._after_connect()
        except BaseException:
            self._close()
            raise
        self._connected = True

    def _silence_message(self) -> str:
        """No motor answered: one short line with the likely causes in order, not one timeout per motor."""
        ids = sorted(m.id for m in self.motors.values())
        return (f"no motor answered a {self.spec.family} ping at {self.spec.baudrate} baud (IDs {ids[0]}..{ids[-1]}): "
                f"the servo power is off, the port holds another kind of bus (a wrong --robot: "
                f"{self.spec.family} expected), the baud rate differs, or the adapter / cable is wrong")

    def disconnect(self, disable_torque: bool = True) -> None:
        """Turn torque off (by default) on every motor, then close the port, even when the first step fails."""
        if not self._connected:
            return
        try:
            if disable_torque:
                self.disable_torque()
        finally:
            self._connected = False
            self._close()

    def __enter__(self) -> "MotorBus":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def set_timing(self, timeout_s: float, budget_s: float) -> None:
        """Per-try reply timeout and the budget of all tries of one operation (the robot tightens them to fit
        a control tick while a loop runs, and restores the patient defaults around it)."""
        self.timeout_s, self.budget_s = timeout_s, budget_s

    # ------------------------------------------------------------------ register access
    def read(self, register: str, motor: str) -> int:
        """Read one register of one motor (acknowledged), decoded to a signed integer."""
        model, reg = self._lookup(register, [motor])
        m_id = self.motors[motor].id
        raw = self._retry(lambda: self._read(m_id, reg.address, reg.size), [m_id], register)
        return model.decode(register, raw)

    def write(self, register: str, motor: str, value: int) -> None:
        """Write one register of one motor and wait for its acknowledgement."""
        model, reg = self._lookup(register, [motor], writing=True)
        m_id = self.motors[motor].id
        raw = model.encode(register, value)
        self._retry(lambda: self._write(m_id, reg.address, reg.size, raw), [m_id], register)

    def sync_read(self, register: str, motors: Iterable[str] | None = None) -> dict[str, int]:
        """Read one register of several motors (all by default) in one transaction: {motor: value}."""
        names = self._names(motors)
        model, reg = self._lookup(register, names)
        ids = [self.motors[n].id for n in names]
        raw = self._retry(lambda: self._sync_read(ids, reg.address, reg.size), ids, register)
        return {n: self.models[n].decode(register, raw[self.motors[n].id]) for n in names}

    def sync_read_each(self, registers: Mapping[str, str]) -> dict[str, int]:
        """Read each motor's own register ({motor: register}) decoded by its own model: one transaction per
        distinct (address, size), so a Koch's XL430 Present_Load and XL330 Present_Current (both at 126) come
        back in one sync read."""
        self._check_connected()
        by_place: dict[tuple[int, int], list[str]] = {}
        for name in self._names(registers):
            entry = self.models[name].register(registers[name])
            by_place.setdefault((entry.address, entry.size), []).append(name)
        out: dict[str, int] = {}
        for (address, size), names in by_place.items():
            ids = [self.motors[n].id for n in names]
            raw = self._retry(lambda: self._sync_read(ids, address, size), ids, registers[names[0]])
            out.update({n: self.models[n].decode(registers[n], raw[self.motors[n].id]) for n in names})
        return out

    def sync_write(self, register: str, values: Mapping[str, int]) -> None:
        """Write one register of several motors in one packet (no acknowledgement on the wire)."""
        names = self._names(values)
        model, reg = self._lookup(register, names, writing=True)
        raw = {self.motors[n].id: self.models[n].encode(register, values[n]) for n in names}
        self._retry(lambda: self._sync_write(reg.address, reg.size, raw), list(raw), register)

    def enable_torque(self, motors: Iterable[str] | None = None) -> None:
        self._set_torque(self._names(motors), 1)

    def disable_torque(self, motors: Iterable[str] | None = None) -> None:
        self._set_torque(self._names(motors), 0)

    def ping(self, motor: str) -> int:
        """The model number the motor reports."""
        m_id = self.motors[motor].id
        return self._retry(lambda: self._ping(m_id), [m_id], None)

    # ------------------------------------------------------------------ helpers
    def _set_torque(self, names: list[str], value: int) -> None:
        """Acknowledged write to each motor; every motor is tried even when one fails (safety first). A reply
        that only reports hardware error bits (an overheated motor) still acknowledges the write."""
        first_error = None
        for name in names:
            try:
                self.write(Reg.Torque_Enable, name, value)
            except MotorStatusError as exc:
                if not set(exc.errors) <= HARDWARE_ERROR_WORDS:
                    first_error = first_error or exc
            except Exception as exc:  # noqa: BLE001 (any failure on one motor must not spare the others)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def _names(self, motors: Iterable[str] | None) -> list[str]:
        if motors is None:
            return list(self.motors)
        names = list(motors)
        unknown = [n for n in names if n not in self.motors]
        if unknown:
            raise KeyError(f"bus '{self.spec.name}' ({self.port}) has no motor {', '.join(map(repr, unknown))}")
        return names

    def _lookup(self, register: str, names: list[str], writing: bool = False):
        """The model and register entry shared by ``names``; fails early on a typo or mixed layouts."""
        self._check_connected()
        if not names:
            raise ValueError("no motors given")
        entries = {n: self.models[n].register(register) for n in names}
        if len({(e.address, e.size) for e in entries.values()}) > 1:
            raise ValueError(f"register {reg_label(register)} is not at the same address on all of "
                             f"{', '.join(names)}: use one transaction per model")
        model, reg = self.models[names[0]], entries[names[0]]
        if writing and not reg.writable:
            raise ValueError(f"register {reg_label(register)} of {model.name} is read-only")
        return model, reg

    def _check_connected(self) -> None:
        if not self._connected:
            raise BusError("bus is not connected (call connect() first)", port=self.port)

    def _retry(self, attempt, ids: list[int], register):
        """Every operation's single path through the retry helper; adds port, motor names and register."""
        try:
            return with_retries(attempt, retries=self.retries, budget_s=self.budget_s, before_retry=self._flush)
        except BusError as exc:
            if not exc.motors:
                exc.motors = tuple(self._names_by_id.get(i, f"ID {i}") for i in ids)
            raise exc.add_context(port=self.port, register=reg_label(register) if register else None)

    def _motor_label(self, motor_id: int) -> str:
        return self._names_by_id.get(motor_id, f"ID {motor_id}")

    def _wire_time_s(self, n_bytes: int) -> float:
        return n_bytes * 10.0 / self.spec.baudrate

    # ------------------------------------------------------------------ family hooks (one attempt each)
    def _open(self) -> None:
        """Open ``self.port`` exclusively; raise ConnectError naming the port when it is missing or busy."""
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """Drop stale input (a late reply from an earlier try) before the next try."""

    def _after_connect(self) -> None:
        """Family-specific checks once every motor answered (e.g. Dynamixel firmware for Fast Sync Read)."""

    def _ping(self, motor_id: int) -> int:
        raise NotImplementedError

    def _read(self, motor_id: int, address: int, size: int) -> int:
        raise NotImplementedError

    def _write(self, motor_id: int, address: int, size: int, raw: int) -> None:
        raise NotImplementedError

    def _sync_read(self, ids: list[int], address: int, size: int) -> dict[int, int]:
        raise NotImplementedError

    def _sync_write(self, address: int, size: int, raw: dict[int, int]) -> None:
        raise NotImplementedError


def disconnect_all(buses: Iterable[MotorBus]) -> Exception | None:
    """Torque off and close every bus, even when one fails (safety first); returns the first failure."""
    first_error = None
    for bus in buses:
        try:
            bus.disconnect(disable_torque=True)
        except Exception as exc:  # noqa: BLE001 (every bus is turned off, whatever happened to another)
            first_error = first_error or exc
    return first_error


def make_bus(spec: BusSpec, port: str, **options) -> MotorBus:
    """The bus class for ``spec.family`` (the Dynamixel SDK is imported only when needed)."""
    if spec.family == "feetech":
        from .feetech import FeetechBus

        return FeetechBus(spec, port, **options)
    if spec.family == "dynamixel":
        from .dynamixel import DynamixelBus

        return DynamixelBus(spec, port, **options)
    raise ValueError(f"bus '{spec.name}': unknown family '{spec.family}' (feetech or dynamixel)")


def read_available(fd: int, max_bytes: int, timeout_s: float) -> bytes:
    """Wait up to ``timeout_s`` for input, then return what is there (b"" on timeout).

    select + os.read on the port's fd: blocking in the kernel releases the GIL and burns no CPU, and it avoids
    pyserial's timeout setter, which reconfigures the tty on every change.
    """
    ready, _, _ = select.select([fd], [], [], max(0.0, timeout_s))
    return os.read(fd, max_bytes) if ready else b""


def _kernel_exclusive(fd: int, on: bool) -> None:
    """The tty's kernel exclusive mode (TIOCEXCL on, TIOCNXCL off): while it is on, every other open() of the
    port fails with EBUSY, whatever the program (a vendor SDK, a terminal), except one run as root. Not a tty
    (a socket:// URL) or not POSIX: nothing to do."""
    try:
        import fcntl
        import termios

        fcntl.ioctl(fd, termios.TIOCEXCL if on else termios.TIOCNXCL)
    except (ImportError, AttributeError, OSError, ValueError):
        pass


@functools.cache
def _exclusive_serial_class():
    """pyserial's Serial that puts the tty in the kernel's exclusive mode while it is open (made on first use:
    pyserial is imported late)."""
    import serial

    class ExclusiveSerial(serial.Serial):
        def open(self) -> None:
            super().open()
            _kernel_exclusive(self.fileno(), True)

        def close(self) -> None:  # the tty may outlive us (a simulator, a hub): leave it openable again
            if self.is_open:
                _kernel_exclusive(self.fileno(), False)
            super().close()

    return ExclusiveSerial


def open_serial(port: str, baudrate: int, timeout_s: float = 0.0):
    """pyserial port opened exclusively: an advisory lock (flock: another actsac, or any program that asks)
    and the kernel's exclusive mode on the tty (any other program opening it afterwards, root excepted);
    closing the port releases both."""
    import serial

    try:
        return _exclusive_serial_class()(port, baudrate, timeout=timeout_s, write_timeout=1.0, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        reason = str(exc)
        if "lock" in reason.lower() or "busy" in reason.lower():
            reason = "port is in use by another process"
        raise ConnectError(f"could not open port: {reason}", port=port) from None
