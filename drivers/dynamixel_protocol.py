"""Dynamixel Protocol 2.0 packet codec: CRC-16, byte stuffing, build/parse (REFERENCE.md section 5).

The project's DynamixelBus talks through dynamixel-sdk; this codec serves the simulator and the tests, so the
simulator is written from the specification and not from the SDK it is checked against.
Packet: FF FF FD 00 ID LEN_L LEN_H INST params CRC_L CRC_H, LEN = len(stuffed params) + 3.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from .tables import le_bytes, le_int  # noqa: F401  (re-exported for the family modules)

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
STATUS = 0x55
STATUS_OVERHEAD = 11  # header 4, ID, LEN 2, INST, ERR, CRC 2
MAX_ID = 0xFC  # the highest ID a servo can have


class Inst(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    FACTORY_RESET = 0x06
    REBOOT = 0x08
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    FAST_SYNC_READ = 0x8A
    BULK_READ = 0x92
    BULK_WRITE = 0x93


class ResultError(enum.IntEnum):
    """Error number in bits 0..6 of a status packet's error byte."""

    RESULT_FAIL = 1
    INSTRUCTION = 2
    CRC = 3
    DATA_RANGE = 4
    DATA_LENGTH = 5
    DATA_LIMIT = 6
    ACCESS = 7


ALERT = 0x80  # error byte bit 7: the motor has a hardware error (details in Hardware_Error_Status)
RESULT_WORDS = {ResultError.RESULT_FAIL: "result fail", ResultError.INSTRUCTION: "instruction error",
                ResultError.CRC: "CRC error", ResultError.DATA_RANGE: "data range error",
                ResultError.DATA_LENGTH: "data length error", ResultError.DATA_LIMIT: "data limit error",
                ResultError.ACCESS: "access error"}
HARDWARE_ERROR_BITS = {0x01: "input voltage", 0x04: "overheat", 0x08: "motor encoder", 0x10: "electrical shock",
                       0x20: "overload"}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/BUYPASS: polynomial 0x8005, init 0, not reflected, no final xor. crc16(b"123456789") = 0xFEE8."""
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(data: bytes) -> bytes:
    """Insert FD after every FF FF FD inside INST..params, so the payload never looks like a header."""
    out = bytearray()
    for byte in data:
        out.append(byte)
        if out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    return bytes(data).replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


class Packet(NamedTuple):
    id: int
    inst: int
    params: bytes  # unstuffed; for a status packet params[0] is the error byte


def build(motor_id: int, inst: int, params: bytes = b"", *, stuffing: bool = True) -> bytes:
    payload = stuff(bytes((inst,)) + bytes(params)) if stuffing else bytes((inst,)) + bytes(params)
    length = len(payload) + 2
    packet = HEADER + bytes((motor_id, length & 0xFF, length >> 8)) + payload
    crc = crc16(packet)
    return packet + bytes((crc & 0xFF, crc >> 8))


def ping(motor_id: int) -> bytes:
    return build(motor_id, Inst.PING)


def read(motor_id: int, address: int, size: int) -> bytes:
    return build(motor_id, Inst.READ, le_bytes(address, 2) + le_bytes(size, 2))


def write(motor_id: int, address: int, size: int, raw: int) -> bytes:
    return build(motor_id, Inst.WRITE, le_bytes(address, 2) + le_bytes(raw, size))


def sync_read(ids, address: int, size: int, *, fast: bool = False) -> bytes:
    inst = Inst.FAST_SYNC_READ if fast else Inst.SYNC_READ
    return build(BROADCAST_ID, inst, le_bytes(address, 2) + le_bytes(size, 2) + bytes(ids))


def sync_write(address: int, size: int, raw_by_id: dict[int, int]) -> bytes:
    params = bytearray(le_bytes(address, 2) + le_bytes(size, 2))
    for motor_id, raw in raw_by_id.items():
        params += bytes((motor_id,)) + le_bytes(raw, size)
    return build(BROADCAST_ID, Inst.SYNC_WRITE, bytes(params))


def status(motor_id: int, error: int = 0, params: bytes = b"") -> bytes:
    return build(motor_id, STATUS, bytes((error,)) + bytes(params))


def fast_sync_read_status(parts: list[tuple[int, int, bytes]]) -> bytes:
    """One status packet from ID FE answering a Fast Sync Read: per motor (error, id, data) followed by a
    running CRC over everything before it; the last motor's CRC is the packet's CRC. Not stuffed."""
    length = 1 + sum(len(data) + 4 for _, _, data in parts)  # INST + parts, the last CRC included
    packet = bytearray(HEADER + bytes((BROADCAST_ID, length & 0xFF, length >> 8, STATUS)))
    crc = crc16(packet)
    for error, motor_id, data in parts:
        part = bytes((error, motor_id)) + bytes(data)
        crc = crc16(part, crc)
        packet += part + bytes((crc & 0xFF, crc >> 8))
        crc = crc16(packet[-2:], crc)
    return bytes(packet)


def parse(buffer: bytes | bytearray) -> tuple[str, Packet | None, int]:
    """Find the first packet in a byte stream: (kind, packet, consumed), kind "packet" | "corrupt" | "incomplete".

    ``consumed`` bytes (garbage before the header, or the whole packet) can be dropped from the buffer.
    """
    start = bytes(buffer).find(HEADER)
    if start < 0:
        keep = max((k for k in (1, 2, 3) if HEADER.startswith(bytes(buffer[-k:]))), default=0) if buffer else 0
        return "incomplete", None, len(buffer) - keep
    if len(buffer) < start + 7:
        return "incomplete", None, start
    length = buffer[start + 5] | buffer[start + 6] << 8
    end = start + 7 + length
    if length < 3:
        return "corrupt", None, start + 7
    if len(buffer) < end:
        return "incomplete", None, start
    packet = bytes(buffer[start:end])
    if crc16(packet[:-2]) != (packet[-2] | packet[-1] << 8):
        return "corrupt", None, end
    payload = unstuff(packet[7:-2])
    return "packet", Packet(packet[4], payload[0], payload[1:]), end


def decode_errors(error: int, hardware_status: int | None = None) -> list[str]:
    """Status error byte (and, for an alert, Hardware_Error_Status) -> words."""
    words = []
    if error & 0x7F:
        words.append(RESULT_WORDS.get(error & 0x7F, f"error number {error & 0x7F}"))
    if error & ALERT:
        if hardware_status:
            words += [w for bit, w in HARDWARE_ERROR_BITS.items() if hardware_status & bit]
        else:
            words.append("hardware alert")
    return words
