"""Feetech SCS/STS bus over pyserial (SO-100's STS3215), from the protocol facts in REFERENCE.md section 4."""

from __future__ import annotations

import time

from . import feetech_protocol as proto
from .bus import MotorBus, open_serial, read_available
from .errors import SERIAL_IO_ERRORS, BusError, BusTimeoutError, ChecksumError, MotorStatusError
from .tables import Reg, motor_model

_MODEL_NUMBER = motor_model("sts3215").register(Reg.Model_Number)


class FeetechBus(MotorBus):
    """Each hook makes one attempt: write the instruction, then read the expected status packets against a
    deadline (emulated wire time + ``timeout_s``), so a silent motor costs one bounded wait, never a hang."""

    family = "feetech"

    def _open(self) -> None:
        self._serial = open_serial(self.port, self.spec.baudrate)
        self._rx = bytearray()

    def _close(self) -> None:
        try:
            self._serial.close()
        except SERIAL_IO_ERRORS:
            pass

    def _flush(self) -> None:
        self._rx.clear()
        try:
            self._serial.reset_input_buffer()
        except SERIAL_IO_ERRORS as exc:
            raise BusError(f"serial I/O failed: {exc}") from None

    # ------------------------------------------------------------------ hooks
    def _ping(self, motor_id: int) -> int:
        self._transact(proto.ping(motor_id), [motor_id], 0)
        return self._read(motor_id, _MODEL_NUMBER.address, _MODEL_NUMBER.size)

    def _read(self, motor_id: int, address: int, size: int) -> int:
        replies = self._transact(proto.read(motor_id, address, size), [motor_id], size)
        return proto.le_int(replies[motor_id])

    def _write(self, motor_id: int, address: int, size: int, raw: int) -> None:
        self._transact(proto.write(motor_id, address, size, raw), [motor_id], 0)

    def _sync_read(self, ids: list[int], address: int, size: int) -> dict[int, int]:
        replies = self._transact(proto.sync_read(ids, address, size), ids, size)
        return {i: proto.le_int(data) for i, data in replies.items()}

    def _sync_write(self, address: int, size: int, raw: dict[int, int]) -> None:
        self._transact(proto.sync_write(address, size, raw), [], 0)

    # ------------------------------------------------------------------ transport
    def _transact(self, packet: bytes, reply_ids: list[int], n_params: int) -> dict[int, bytes]:
        """Send ``packet``; collect one status packet with ``n_params`` bytes from each of ``reply_ids``."""
        try:
            return self._exchange(packet, reply_ids, n_params)
        except SERIAL_IO_ERRORS as exc:  # port unplugged, pty gone
            raise BusError(f"serial I/O failed: {exc}") from None

    def _exchange(self, packet: bytes, reply_ids: list[int], n_params: int) -> dict[int, bytes]:
        self._flush()  # a late reply to an earlier instruction must not be taken for this one's
        self._serial.write(packet)
        if not reply_ids:
            return {}
        reply_size = proto.STATUS_OVERHEAD + n_params
        deadline = time.monotonic() + self.timeout_s + self._wire_time_s(len(packet) + len(reply_ids) * reply_size)
        pending = list(reply_ids)
        replies: dict[int, bytes] = {}
        errors: dict[int, int] = {}
        while pending:
            kind, status, consumed = proto.parse(self._rx)
            del self._rx[:consumed]
            if kind == "corrupt":
                raise ChecksumError("corrupt reply (bad checksum)", motors=[self._motor_label(pending[0])])
            if kind == "packet":
                if status.id not in pending:
                    continue  # a stale reply from an earlier try: skip it
                if len(status.params) != n_params:
                    raise ChecksumError(f"reply with {len(status.params)} data bytes, expected {n_params}",
                                        motors=[self._motor_label(status.id)])
                pending.remove(status.id)
                replies[status.id] = status.params
                if status.code:
                    errors[status.id] = status.code
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited_ms = (self.timeout_s + self._wire_time_s(len(packet))) * 1e3
                raise BusTimeoutError(f"no reply within {waited_ms:.0f} ms (timeout)",
                                      motors=[self._motor_label(i) for i in pending])
            self._rx += read_available(self._serial.fileno(), len(pending) * reply_size, remaining)
        if errors:
            words = sorted({w for code in errors.values() for w in proto.decode_errors(code)})
            raise MotorStatusError(f"status error: {', '.join(words)}", errors=words,
                                   motors=[self._motor_label(i) for i in errors])
        return replies
