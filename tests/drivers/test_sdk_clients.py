"""Independent clients against the simulator: the vendors' own SDKs must ping, read and sync-read it."""

import pytest

from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate


@pytest.fixture(scope="module")
def koch_port():
    with simulate("koch") as ports:
        yield ports["main"]


@pytest.fixture(scope="module")
def so100_port():
    with simulate("so100") as ports:
        yield ports["main"]


@pytest.fixture
def dxl(koch_port):
    sdk = pytest.importorskip("dynamixel_sdk")
    port = sdk.PortHandler(koch_port)
    assert port.openPort() and port.setBaudRate(1_000_000)
    yield sdk, port, sdk.PacketHandler(2.0)
    port.closePort()


def test_dynamixel_sdk_ping_and_read(dxl):
    sdk, port, packets = dxl
    for motor in load_robot("koch").motors:
        model_number, result, error = packets.ping(port, motor.id)
        assert (result, error) == (sdk.COMM_SUCCESS, 0)
        assert model_number == {"xl430-w250": 1060, "xl330-m288": 1200}[motor.model]
        position, result, error = packets.read4ByteTxRx(port, motor.id, 132)
        assert result == sdk.COMM_SUCCESS and position == 2048 + (452 if motor.name == "gripper" else 0)


def test_dynamixel_sdk_broadcast_ping(dxl):
    sdk, port, packets = dxl
    found, result = packets.broadcastPing(port)
    assert result == sdk.COMM_SUCCESS
    assert {i: v[0] for i, v in found.items()} == {1: 1060, 2: 1060, 3: 1200, 4: 1200, 5: 1200, 6: 1200}


@pytest.mark.parametrize("fast", [False, True], ids=["sync-read", "fast-sync-read"])
def test_dynamixel_sdk_sync_read(dxl, fast):
    sdk, port, packets = dxl
    group = sdk.GroupSyncRead(port, packets, 132, 4)
    for motor_id in range(1, 7):
        assert group.addParam(motor_id)
    assert (group.fastSyncRead() if fast else group.txRxPacket()) == sdk.COMM_SUCCESS
    values = [group.getData(i, 132, 4) for i in range(1, 7)]
    assert values == [2048] * 5 + [2500]


def test_dynamixel_sdk_bulk_read_and_sync_write(dxl):
    sdk, port, packets = dxl
    writer = sdk.GroupSyncWrite(port, packets, 64, 1)
    for motor_id in (2, 5):
        writer.addParam(motor_id, [1])
    assert writer.txPacket() == sdk.COMM_SUCCESS
    bulk = sdk.GroupBulkRead(port, packets)
    assert bulk.addParam(2, 64, 1) and bulk.addParam(5, 132, 4) and bulk.addParam(6, 64, 1)
    assert bulk.txRxPacket() == sdk.COMM_SUCCESS
    assert (bulk.getData(2, 64, 1), bulk.getData(5, 132, 4), bulk.getData(6, 64, 1)) == (1, 2048, 0)
    _, error = packets.write4ByteTxRx(port, 2, 20, 5)  # EEPROM with torque on: refused
    assert error == 7  # access error
    for motor_id in (2, 5):
        packets.write1ByteTxRx(port, motor_id, 64, 0)


@pytest.fixture
def scs(so100_port):
    sdk = pytest.importorskip("scservo_sdk")
    port = sdk.PortHandler(so100_port)
    assert port.openPort() and port.setBaudRate(1_000_000)
    yield sdk, port, sdk.PacketHandler(0)
    port.closePort()


def test_feetech_sdk_ping_and_read(scs):
    sdk, port, packets = scs
    for motor_id in range(1, 7):
        model_number, result, error = packets.ping(port, motor_id)
        assert (model_number, result, error) == (777, sdk.COMM_SUCCESS, 0)
    position, result, error = packets.read2ByteTxRx(port, 6, 56)
    assert (position, result, error) == (2500, sdk.COMM_SUCCESS, 0)


def test_feetech_sdk_sync_read_and_write(scs):
    sdk, port, packets = scs
    group = sdk.GroupSyncRead(port, packets, 56, 2)
    for motor_id in range(1, 7):
        assert group.addParam(motor_id)
    assert group.txRxPacket() == sdk.COMM_SUCCESS
    assert [group.getData(i, 56, 2) for i in range(1, 7)] == [2048] * 5 + [2500]
    writer = sdk.GroupSyncWrite(port, packets, 40, 1)
    writer.addParam(3, [1])
    assert writer.txPacket() == sdk.COMM_SUCCESS
    torque, result, _ = packets.read1ByteTxRx(port, 3, 40)
    assert (torque, result) == (1, sdk.COMM_SUCCESS)
    assert packets.write1ByteTxRx(port, 3, 40, 0) == (sdk.COMM_SUCCESS, 0)
