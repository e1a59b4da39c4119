"""Instruction handlers of the simulated motors, one per family, written from the protocol specifications.

``handle(motors, packet, alive)`` applies one instruction packet to the bus's ``SimMotors`` and returns the
status packets to send, in bus order, each as a ``Reply`` naming the motors whose bytes it carries (so
faults can be applied per motor) and the return delay before it. A motor for which ``alive(id)`` is false
neither acts nor answers.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .. import dynamixel_protocol as dxl
from .. import feetech_protocol as fts
from ..tables import Reg
from .motors import SimMotors

Alive = Callable[[int], bool]


class Reply(NamedTuple):
    motor_ids: tuple[int, ...]
    data: bytes
    delay_s: float  # return delay before this packet


def _targets(motors: SimMotors, motor_id: int, alive: Alive) -> list[int]:
    ids = motors.ids if motor_id in (fts.BROADCAST_ID, dxl.BROADCAST_ID) else [motor_id]
    return sorted(i for i in ids if i in motors.memory and alive(i))


# ---------------------------------------------------------------------------------------------- Feetech
def _fts_error(motors: SimMotors, motor_id: int) -> int:
    return motors.hardware_error[motor_id]


def _fts_reply(motors: SimMotors, motor_id: int, params: bytes = b"") -> Reply:
    return Reply((motor_id,), fts.status(motor_id, _fts_error(motors, motor_id), params),
                 motors.return_delay_s(motor_id))


def handle_feetech(motors: SimMotors, packet: fts.Packet, alive: Alive) -> list[Reply]:
    inst, p, broadcast = packet.code, packet.params, packet.id == fts.BROADCAST_ID
    if inst == fts.Inst.PING:
        return [_fts_reply(motors, i) for i in _targets(motors, packet.id, alive)]
    if inst == fts.Inst.READ and len(p) == 2 and not broadcast:
        motors.update()
        return [_fts_reply(motors, i, motors.read(i, p[0], p[1]) or b"") for i in _targets(motors, packet.id, alive)]
    if inst == fts.Inst.WRITE and len(p) >= 2:
        replies = []
        for i in _targets(motors, packet.id, alive):
            motors.write(i, p[0], p[1:])
            if not broadcast and motors.status_return_level(i) >= 1:
                replies.append(_fts_reply(motors, i))
        return replies
    if inst == fts.Inst.SYNC_READ and len(p) >= 3 and broadcast:
        motors.update()
        address, size = p[0], p[1]
        return [_fts_reply(motors, i, motors.read(i, address, size) or b"")
                for i in p[2:] if i in motors.memory and alive(i)]
    if inst == fts.Inst.SYNC_WRITE and len(p) >= 2 and broadcast:
        address, size = p[0], p[1]
        for k in range(2, len(p) - size, size + 1):
            if p[k] in motors.memory and alive(p[k]):
                motors.write(p[k], address, p[k + 1:k + 1 + size])
        return []
    return []  # unknown or malformed instruction: a Feetech servo stays silent


# ---------------------------------------------------------------------------------------------- Dynamixel
_REFUSAL = {"access": dxl.ResultError.ACCESS, "range": dxl.ResultError.DATA_RANGE}


def _dxl_error(motors: SimMotors, motor_id: int, result: int = 0) -> int:
    return result | (dxl.ALERT if motors.hardware_error[motor_id] else 0)


def _dxl_reply(motors: SimMotors, motor_id: int, params: bytes = b"", result: int = 0) -> Reply:
    return Reply((motor_id,), dxl.status(motor_id, _dxl_error(motors, motor_id, result), params),
                 motors.return_delay_s(motor_id))


def _dxl_read_reply(motors: SimMotors, motor_id: int, address: int, size: int) -> Reply:
    data = motors.read(motor_id, address, size)
    if data is None:
        return _dxl_reply(motors, motor_id, result=dxl.ResultError.DATA_RANGE)
    return _dxl_reply(motors, motor_id, data)


def _u16(p: bytes, k: int) -> int:
    return p[k] | p[k + 1] << 8


def handle_dynamixel(motors: SimMotors, packet: dxl.Packet, alive: Alive) -> list[Reply]:
    inst, p, broadcast = packet.inst, packet.params, packet.id == dxl.BROADCAST_ID
    targets = _targets(motors, packet.id, alive)
    if inst == dxl.Inst.PING:
        return [_dxl_reply(motors, i, dxl.le_bytes(motors.get(i, Reg.Model_Number), 2)
                           + bytes((motors.get(i, Reg.Firmware_Version),))) for i in targets]
    if inst == dxl.Inst.READ and not broadcast:
        if len(p) != 4:
            return [_dxl_reply(motors, i, result=dxl.ResultError.DATA_LENGTH) for i in targets]
        motors.update()
        return [_dxl_read_reply(motors, i, _u16(p, 0), _u16(p, 2)) for i in targets]
    if inst == dxl.Inst.WRITE:
        if len(p) < 3:
            return [_dxl_reply(motors, i, result=dxl.ResultError.DATA_LENGTH) for i in targets if not broadcast]
        replies = []
        for i in targets:
            refused = motors.write(i, _u16(p, 0), p[2:])
            if not broadcast and motors.status_return_level(i) >= 2:
                replies.append(_dxl_reply(motors, i, result=_REFUSAL[refused] if refused else 0))
        return replies
    if inst in (dxl.Inst.SYNC_READ, dxl.Inst.FAST_SYNC_READ) and broadcast and len(p) >= 5:
        motors.update()
        address, size = _u16(p, 0), _u16(p, 2)
        ids = [i for i in p[4:] if i in motors.memory and alive(i)]
        if inst == dxl.Inst.SYNC_READ:
            return [_dxl_read_reply(motors, i, address, size) for i in ids]
        parts = [(_dxl_error(motors, i), i, motors.read(i, address, size) or bytes(size)) for i in ids]
        delay = sum(motors.return_delay_s(i) for i in ids[:1])
        return [Reply(tuple(ids), dxl.fast_sync_read_status(parts), delay)] if ids else []
    if inst == dxl.Inst.SYNC_WRITE and broadcast and len(p) >= 4:
        address, size = _u16(p, 0), _u16(p, 2)
        for k in range(4, len(p) - size, size + 1):
            if p[k] in motors.memory and alive(p[k]):
                motors.write(p[k], address, p[k + 1:k + 1 + size])
        return []
    if inst == dxl.Inst.BULK_READ and broadcast:
        motors.update()
        return [_dxl_read_reply(motors, p[k], _u16(p, k + 1), _u16(p, k + 3))
                for k in range(0, len(p) - 4, 5) if p[k] in motors.memory and alive(p[k])]
    if inst == dxl.Inst.BULK_WRITE and broadcast:
        k = 0
        while k + 5 <= len(p):
            motor_id, address, size = p[k], _u16(p, k + 1), _u16(p, k + 3)
            if motor_id in motors.memory and alive(motor_id):
                motors.write(motor_id, address, p[k + 5:k + 5 + size])
            k += 5 + size
        return []
    if inst == dxl.Inst.REBOOT:
        for i in targets:
            motors.set_hardware_error(i, 0)
        return [] if broadcast else [_dxl_reply(motors, i) for i in targets]
    if broadcast:
        return []
    return [_dxl_reply(motors, i, result=dxl.ResultError.INSTRUCTION) for i in targets]
