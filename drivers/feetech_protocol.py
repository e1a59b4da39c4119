"""Feetech SCS/STS packet codec: pure functions over bytes (REFERENCE.md section 4), shared by bus and simulator.

Instruction: FF FF ID LEN INST P1..Pn CHK, status: FF FF ID LEN ERR P1..Pn CHK, LEN = n + 2,
CHK = ~(ID + LEN + INST/ERR + sum P) & 0xFF. Little-endian fields, 1-byte addresses, no byte stuffing.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from .tables import le_bytes, le_int  # noqa: F401  (re-exported for the family modules)

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD  # the highest ID a servo can have
STATUS_OVERHEAD = 6  # FF FF ID LEN ERR ... CHK


class Inst(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


ERROR_BITS = {0x01: "input voltage", 0x02: "angle sensor", 0x04: "overheat", 0x08: "over-current",
              0x20: "overload"}


class Packet(NamedTuple):
    id: int
    code: int  # INST of an instruction packet, ERR of a status packet
    params: bytes


def checksum(body: bytes) -> int:
    """``body`` = ID LEN INST/ERR params."""
    return ~sum(body) & 0xFF


def build(motor_id: int, code: int, params: bytes = b"") -> bytes:
    body = bytes((motor_id, len(params) + 2, code)) + bytes(params)
    return HEADER + body + bytes((checksum(body),))


def ping(motor_id: int) -> bytes:
    return build(motor_id, Inst.PING)


def read(motor_id: int, address: int, size: int) -> bytes:
    return build(motor_id, Inst.READ, bytes((address, size)))


def write(motor_id: int, address: int, size: int, raw: int) -> bytes:
    return build(motor_id, Inst.WRITE, bytes((address,)) + le_bytes(raw, size))


def sync_read(ids, address: int, size: int) -> bytes:
    return build(BROADCAST_ID, Inst.SYNC_READ, bytes((address, size)) + bytes(ids))


def sync_write(address: int, size: int, raw_by_id: dict[int, int]) -> bytes:
    params = bytearray((address, size))
    for motor_id, raw in raw_by_id.items():
        params += bytes((motor_id,)) + le_bytes(raw, size)
    return build(BROADCAST_ID, Inst.SYNC_WRITE, bytes(params))


def status(motor_id: int, error: int = 0, params: bytes = b"") -> bytes:
    return build(motor_id, error, params)


def parse(buffer: bytes | bytearray) -> tuple[str, Packet | None, int]:
    """Find the first packet in a byte stream.

    Returns (kind, packet, consumed): kind "packet" with the packet; "corrupt" (bad checksum) with None;
    "incomplete" with None when more bytes are needed. ``consumed`` bytes (garbage before a header, or the
    whole packet) can be dropped from the buffer.
    """
    start = buffer.find(HEADER)
    while start >= 0 and start + 2 < len(buffer) and buffer[start + 2] == 0xFF:
        start += 1  # FF FF FF ID: the header is the last two FFs
    if start < 0:
        keep = 1 if buffer[-1:] == b"\xff" else 0
        return "incomplete", None, len(buffer) - keep
    if len(buffer) < start + 4:
        return "incomplete", None, start
    length = buffer[start + 3]
    end = start + 4 + length
    if length < 2:
        return "corrupt", None, start + 4
    if len(buffer) < end:
        return "incomplete", None, start
    body = bytes(buffer[start + 2:end - 1])
    if checksum(body) != buffer[end - 1]:
        return "corrupt", None, end
    return "packet", Packet(body[0], body[2], body[3:]), end


def decode_errors(error: int) -> list[str]:
    """Status error byte -> words, e.g. 0x24 -> ["overheat", "overload"]."""
    words = [word for bit, word in ERROR_BITS.items() if error & bit]
    unknown = error & ~sum(ERROR_BITS)
    if unknown:
        words.append(f"unknown error bits 0x{unknown:02x}")
    return words
