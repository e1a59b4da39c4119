"""Dynamixel Protocol 2.0 bus through dynamixel-sdk (GroupSyncRead / GroupSyncWrite, Fast Sync Read).

The SDK moves the bytes; this module adds what it lacks: an exclusive port, per-try timeouts of our choosing
instead of its 34 ms default, status errors kept from sync reads (the SDK's groups drop them), and SDK
result codes turned into the drivers' exceptions.
"""

from __future__ import annotations

import dynamixel_sdk as sdk

from . import dynamixel_protocol as proto
from .bus import MotorBus, open_serial, read_available
from .errors import SERIAL_IO_ERRORS, BusError, BusTimeoutError, ChecksumError, ConnectError, MotorStatusError
from .tables import Reg

FAST_SYNC_READ_MIN_FIRMWARE = 46  # X-series firmware that answers instruction 0x8A (REFERENCE.md section 5)


class _PortHandler(sdk.PortHandler):
    """The SDK's port handler, opened exclusively and with our per-try timeout instead of 2 x 16 ms + 2 ms."""

    def __init__(self, port_name: str, timeout_ms: float):
        super().__init__(port_name)
        self.timeout_ms = timeout_ms

    def setupPort(self, cflag_baud):  # noqa: N802 (SDK naming)
        if self.is_open:
            self.closePort()
        self.ser = open_serial(self.port_name, self.baudrate)
        self.is_open = True
        self.ser.reset_input_buffer()
        self.tx_time_per_byte = (1000.0 / self.baudrate) * 10.0
        return True

    def readPort(self, length):  # noqa: N802
        """Block (in the kernel) until bytes arrive or the packet deadline passes, instead of busy-polling."""
        remaining_s = (self.packet_timeout - self.getTimeSinceStart()) / 1e3
        return read_available(self.ser.fileno(), length, remaining_s) if length > 0 else b""

    def setPacketTimeout(self, packet_length):  # noqa: N802
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + self.timeout_ms


class DynamixelBus(MotorBus):
    """``use_fast_sync_read``: None = when every motor's firmware supports it, True/False to force."""

    family = "dynamixel"

    def __init__(self, spec, port, *, use_fast_sync_read: bool | None = None, **options):
        super().__init__(spec, port, **options)
        self.use_fast_sync_read = use_fast_sync_read
        self.fast_sync_read = False
        self._packets = sdk.PacketHandler(2.0)
        self._sync_reads: dict[tuple, sdk.GroupSyncRead] = {}
        self._sync_writes: dict[tuple, sdk.GroupSyncWrite] = {}
        self._port: _PortHandler | None = None

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        self._port = _PortHandler(self.port, self.timeout_s * 1e3)
        if not self._port.setBaudRate(self.spec.baudrate):  # opens the port (exclusive) when the rate is valid
            raise ConnectError(f"dynamixel-sdk does not accept {self.spec.baudrate} baud", port=self.port)

    def _close(self) -> None:
        try:
            self._port.closePort()
        except SERIAL_IO_ERRORS:
            pass
        self._sync_reads.clear()
        self._sync_writes.clear()

    def _flush(self) -> None:
        self._port.is_using = False  # an exception mid-transaction must not leave the SDK "busy" forever
        self._port.clearPort()

    def _after_connect(self) -> None:
        if self.use_fast_sync_read is not None:
            self.fast_sync_read = self.use_fast_sync_read
            return
        versions = self._read_each(Reg.Firmware_Version)
        self.fast_sync_read = min(versions.values()) >= FAST_SYNC_READ_MIN_FIRMWARE

    def _read_each(self, register) -> dict[str, int]:
        """One acknowledged read per motor (used before the bus is marked connected)."""
        out = {}
        for name, motor in self.motors.items():
            reg = self.models[name].register(register)
            raw = self._retry(lambda m=motor, r=reg: self._read(m.id, r.address, r.size), [motor.id], register)
            out[name] = self.models[name].decode(register, raw)
        return out

    # ------------------------------------------------------------------ hooks
    def set_timing(self, timeout_s: float, budget_s: float) -> None:
        super().set_timing(timeout_s, budget_s)
        if self._port is not None:
            self._port.timeout_ms = timeout_s * 1e3

    def _begin(self) -> None:
        """Before each try: the SDK must not think the port is still busy (an earlier try may have failed)."""
        self._port.is_using = False

    def _ping(self, motor_id: int) -> int:
        self._begin()
        model_number, result, error = self._io(self._packets.ping, self._port, motor_id)
        self._check(result, error, [motor_id])
        return model_number

    def _read(self, motor_id: int, address: int, size: int) -> int:
        self._begin()
        data, result, error = self._io(self._packets.readTxRx, self._port, motor_id, address, size)
        self._check(result, error, [motor_id])
        return proto.le_int(bytes(data))

    def _write(self, motor_id: int, address: int, size: int, raw: int) -> None:
        self._begin()
        result, error = self._io(self._packets.writeTxRx, self._port, motor_id, address, size,
                                 list(proto.le_bytes(raw, size)))
        self._check(result, error, [motor_id])

    def _sync_read(self, ids: list[int], address: int, size: int) -> dict[int, int]:
        self._begin()
        key = (address, size, tuple(ids))
        group = self._sync_reads.get(key)
        if group is None:
            group = self._sync_reads[key] = sdk.GroupSyncRead(self._port, self._packets, address, size)
            for motor_id in ids:
                group.addParam(motor_id)
        if self.fast_sync_read:
            return self._fast_sync_read(group, ids, size)
        self._check(self._io(group.txPacket), 0, ids)
        values, errors = {}, {}
        for motor_id in ids:  # the SDK's own rxPacket would drop each reply's error byte
            data, result, error = self._io(self._packets.readRx, self._port, motor_id, size)
            self._check(result, 0, [motor_id])
            values[motor_id] = proto.le_int(bytes(data))
            if error:
                errors[motor_id] = error
        self._raise_status(errors)
        return values

    def _fast_sync_read(self, group, ids: list[int], size: int) -> dict[int, int]:
        self._check(self._io(group.fastSyncReadTxPacket), 0, ids)
        data, result, _ = self._io(self._packets.fastSyncReadRx, self._port, proto.BROADCAST_ID, (size + 4) * len(ids))
        self._check(result, 0, ids)
        values, errors = {}, {}
        for k in range(len(ids)):  # per motor: error, id, data, crc; a silent motor leaves its part out
            part = bytes(data[k * (size + 4):(k + 1) * (size + 4)])
            if len(part) < size + 2:
                break
            if part[1] not in ids:
                raise ChecksumError("corrupt Fast Sync Read reply", motors=self._labels(ids))
            values[part[1]] = proto.le_int(part[2:2 + size])
            if part[0]:
                errors[part[1]] = part[0]
        missing = [i for i in ids if i not in values]
        if missing:
            raise BusTimeoutError("no part in the Fast Sync Read reply (timeout)", motors=self._labels(missing))
        self._raise_status(errors)
        return values

    def _sync_write(self, address: int, size: int, raw: dict[int, int]) -> None:
        self._begin()
        group = self._sync_writes.get((address, size))
        if group is None:
            group = self._sync_writes[(address, size)] = sdk.GroupSyncWrite(self._port, self._packets, address, size)
        group.clearParam()
        for motor_id, value in raw.items():
            group.addParam(motor_id, list(proto.le_bytes(value, size)))
        self._check(self._io(group.txPacket), 0, list(raw))

    # ------------------------------------------------------------------ results -> exceptions
    def _io(self, call, *args):
        try:
            return call(*args)
        except SERIAL_IO_ERRORS as exc:
            raise BusError(f"serial I/O failed: {exc}") from None

    def _labels(self, ids) -> list[str]:
        return [self._motor_label(i) for i in ids]

    def _check(self, result: int, error: int, ids: list[int]) -> None:
        if result == sdk.COMM_RX_TIMEOUT:
            raise BusTimeoutError(f"no reply within {self.timeout_s * 1e3:.0f} ms (timeout)", motors=self._labels(ids))
        if result == sdk.COMM_RX_CORRUPT:
            raise ChecksumError("corrupt or incomplete reply (bad CRC)", motors=self._labels(ids))
        if result != sdk.COMM_SUCCESS:
            raise BusError(self._packets.getTxRxResult(result), motors=self._labels(ids))
        if error:
            self._raise_status({ids[0]: error})

    def _raise_status(self, errors: dict[int, int]) -> None:
        if not errors:
            return
        words: set[str] = set()
        for motor_id, error in errors.items():
            hardware = self._hardware_error_status(motor_id) if error & proto.ALERT else None
            words.update(proto.decode_errors(error, hardware))
        raise MotorStatusError(f"status error: {', '.join(sorted(words))}", errors=sorted(words),
                               motors=self._labels(errors))

    def _hardware_error_status(self, motor_id: int) -> int | None:
        """Decode an alert: read Hardware_Error_Status once (best effort; None when that fails too)."""
        self._port.is_using = False
        address = self.models[self._names_by_id[motor_id]].register(Reg.Hardware_Error_Status).address
        try:
            value, result, _ = self._packets.read1ByteTxRx(self._port, motor_id, address)
        except SERIAL_IO_ERRORS:
            return None
        return value if result == sdk.COMM_SUCCESS else None
