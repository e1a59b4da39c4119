"""Control tables: no overlapping registers, a vocabulary that catches typos, sign encodings."""

import pytest

from actsac.drivers.tables import (MODELS, Reg, decode_sign_magnitude, encode_sign_magnitude, motor_model,
                                   register_name)


@pytest.mark.parametrize("model", list(MODELS.values()), ids=list(MODELS))
def test_no_two_registers_overlap(model):
    entries = sorted(model.registers.items(), key=lambda item: item[1].address)
    for (name_a, a), (name_b, b) in zip(entries, entries[1:]):
        assert a.address + a.size <= b.address, f"{model.name}: {name_a.value} overlaps {name_b.value}"
    last = entries[-1][1]
    assert last.address + last.size <= model.memory_size


@pytest.mark.parametrize("model", list(MODELS.values()), ids=list(MODELS))
def test_eeprom_boundary_and_core_registers(model):
    for name in ("Model_Number", "ID", "Homing_Offset", "Min_Position_Limit", "Max_Position_Limit"):
        assert model.is_eeprom(name)
    for name in ("Torque_Enable", "Goal_Position", "Present_Position", "Present_Velocity"):
        assert not model.is_eeprom(name)
    assert not model.register("Present_Position").writable
    assert model.register("Goal_Position").writable


def test_model_numbers_and_addresses_from_the_datasheets():
    assert (MODELS["sts3215"].model_number, MODELS["xl330-m288"].model_number,
            MODELS["xl430-w250"].model_number, MODELS["xm430-w350"].model_number) == (777, 1200, 1060, 1020)
    sts, xl = MODELS["sts3215"], MODELS["xl330-m288"]
    assert (sts.register("Present_Position").address, sts.register("Homing_Offset").address) == (56, 31)
    assert (xl.register("Goal_Position").address, xl.register("Present_Position").address) == (116, 132)


def test_a_typo_fails_early_with_a_suggestion():
    with pytest.raises(KeyError, match="Present_Position"):
        register_name("Presnt_Position")
    with pytest.raises(KeyError, match="xl430-w250 has no register Present_Current"):
        MODELS["xl430-w250"].register("Present_Current")
    assert Reg.Goal_Position == "Goal_Position"


@pytest.mark.parametrize("value, sign_bit, raw", [
    pytest.param(5, 11, 5, id="positive"),
    pytest.param(-5, 11, 0x805, id="negative-bit11"),
    pytest.param(-2047, 11, 0xFFF, id="most-negative-bit11"),
    pytest.param(-1, 15, 0x8001, id="negative-bit15"),
])
def test_sign_magnitude(value, sign_bit, raw):
    assert encode_sign_magnitude(value, sign_bit) == raw
    assert decode_sign_magnitude(raw, sign_bit) == value


def test_model_encode_decode_per_family():
    sts, xl = MODELS["sts3215"], MODELS["xl330-m288"]
    assert sts.encode("Homing_Offset", -100) == 0x800 | 100
    assert xl.encode("Homing_Offset", -100) == (1 << 32) - 100
    assert xl.decode("Present_Velocity", (1 << 32) - 3) == -3
    with pytest.raises(ValueError):
        sts.encode("Homing_Offset", 4000)
    with pytest.raises(ValueError):
        sts.encode("Torque_Enable", -1)


def test_homing_offset_limit_comes_from_the_control_tables():
    assert motor_model("sts3215").homing_offset_limit == 2047
    assert motor_model("xl330-m288").homing_offset_limit == 2**31 - 1
