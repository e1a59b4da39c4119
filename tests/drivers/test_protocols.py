"""Packet codecs against the published vectors (REFERENCE.md sections 4 and 5)."""

import pytest

from actsac.drivers import dynamixel_protocol as dxl
from actsac.drivers import feetech_protocol as fts


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("packet, expected", [
    pytest.param(fts.read(1, 56, 2), "FF FF 01 04 02 38 02 BE", id="read-present-position-id1"),
    pytest.param(fts.status(1, 0, fts.le_bytes(2048, 2)), "FF FF 01 04 00 00 08 F2", id="reply-2048"),
    pytest.param(fts.write(1, 40, 1, 1), "FF FF 01 04 03 28 01 CE", id="torque-on-id1"),
    pytest.param(fts.ping(1), "FF FF 01 02 01 FB", id="ping-id1"),
])
def test_feetech_vectors(packet, expected):
    assert packet == h(expected)


@pytest.mark.parametrize("packet, expected", [
    pytest.param(dxl.ping(1), "FF FF FD 00 01 03 00 01 19 4E", id="ping-id1"),
    pytest.param(dxl.sync_write(116, 4, {1: 150, 2: 170}),
                 "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87",
                 id="sync-write-goal-150-170"),
])
def test_dynamixel_vectors(packet, expected):
    assert packet == h(expected)


def test_dynamixel_crc_check_value():
    assert dxl.crc16(b"123456789") == 0xFEE8


@pytest.mark.parametrize("raw, stuffed", [
    pytest.param("01 FF FF FD 02", "01 FF FF FD FD 02", id="one-header-inside"),
    pytest.param("FF FF FD FF FF FD", "FF FF FD FD FF FF FD FD", id="two-headers"),
    pytest.param("FF FF FC FD", "FF FF FC FD", id="no-header"),
    pytest.param("FF FF FD", "FF FF FD FD", id="at-the-end"),
])
def test_byte_stuffing_round_trip(raw, stuffed):
    assert dxl.stuff(h(raw)) == h(stuffed)
    assert dxl.unstuff(h(stuffed)) == h(raw)


def test_dynamixel_stuffed_packet_parses_back():
    packet = dxl.status(3, 0, h("FF FF FD 07"))
    assert h("FF FF FD FD") in packet[7:]
    kind, parsed, consumed = dxl.parse(b"\x00\x01" + packet)
    assert (kind, parsed.id, parsed.params, consumed) == ("packet", 3, h("00 FF FF FD 07"), len(packet) + 2)


@pytest.mark.parametrize("codec", [fts, dxl], ids=["feetech", "dynamixel"])
def test_parse_incomplete_then_corrupt(codec):
    packet = codec.status(2, 0, b"\x10\x20")
    assert codec.parse(packet[:-1])[0] == "incomplete"
    bad = bytearray(packet)
    bad[-3] ^= 0x04
    kind, parsed, consumed = codec.parse(bytes(bad))
    assert (kind, parsed, consumed) == ("corrupt", None, len(packet))


def test_feetech_sync_packets():
    assert fts.sync_read([1, 2], 56, 2) == fts.build(0xFE, 0x82, h("38 02 01 02"))
    assert fts.sync_write(42, 2, {1: 0x0800, 2: 0x0400}) == fts.build(0xFE, 0x83, h("2A 02 01 00 08 02 00 04"))


def test_dynamixel_fast_sync_read_reply_has_running_crcs():
    reply = dxl.fast_sync_read_status([(0, 1, h("00 08 00 00")), (0, 2, h("00 04 00 00"))])
    assert len(reply) == 8 + 2 * (4 + 4)
    first_crc = dxl.crc16(reply[:14])
    assert reply[14:16] == bytes((first_crc & 0xFF, first_crc >> 8))
    kind, parsed, _ = dxl.parse(reply)
    assert kind == "packet" and parsed.id == dxl.BROADCAST_ID and parsed.inst == dxl.STATUS


@pytest.mark.parametrize("error, words", [
    pytest.param(0x24, ["overheat", "overload"], id="feetech-overheat-overload"),
    pytest.param(0x01, ["input voltage"], id="feetech-voltage"),
])
def test_feetech_error_words(error, words):
    assert fts.decode_errors(error) == words


@pytest.mark.parametrize("error, hardware, words", [
    pytest.param(0x07, None, ["access error"], id="access"),
    pytest.param(0x80, 0x20, ["overload"], id="alert-overload"),
    pytest.param(0x80, None, ["hardware alert"], id="alert-undecoded"),
    pytest.param(0x84, 0x04, ["data range error", "overheat"], id="range-and-overheat"),
])
def test_dynamixel_error_words(error, hardware, words):
    assert dxl.decode_errors(error, hardware) == words
