"""Control tables as data: one frozen record per motor model, one register vocabulary for both families.

The bus, the simulator and the tests all read these records, so an address is written down exactly once.
Sources: Feetech STS3215 memory table (SMS/STS series manual) and the ROBOTIS e-Manual control tables of
the X-series (XL330-M288, XL430-W250, XM430-W350). Addresses below ``eeprom_end`` live in EEPROM.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


class Reg(str, enum.Enum):
    """Every register name the drivers know (LeRobot-style names). ``Reg.Goal_Position == "Goal_Position"``."""

    Firmware_Major_Version = "Firmware_Major_Version"
    Firmware_Minor_Version = "Firmware_Minor_Version"
    Firmware_Version = "Firmware_Version"
    Model_Number = "Model_Number"
    Model_Information = "Model_Information"
    ID = "ID"
    Baud_Rate = "Baud_Rate"
    Return_Delay_Time = "Return_Delay_Time"
    Status_Return_Level = "Status_Return_Level"
    Drive_Mode = "Drive_Mode"
    Operating_Mode = "Operating_Mode"
    Secondary_ID = "Secondary_ID"
    Protocol_Type = "Protocol_Type"
    Homing_Offset = "Homing_Offset"
    Moving_Threshold = "Moving_Threshold"
    Min_Position_Limit = "Min_Position_Limit"
    Max_Position_Limit = "Max_Position_Limit"
    Max_Temperature_Limit = "Max_Temperature_Limit"
    Max_Voltage_Limit = "Max_Voltage_Limit"
    Min_Voltage_Limit = "Min_Voltage_Limit"
    PWM_Limit = "PWM_Limit"
    Current_Limit = "Current_Limit"
    Velocity_Limit = "Velocity_Limit"
    Shutdown = "Shutdown"
    Max_Torque_Limit = "Max_Torque_Limit"
    Phase = "Phase"
    Unloading_Condition = "Unloading_Condition"
    LED_Alarm_Condition = "LED_Alarm_Condition"
    P_Coefficient = "P_Coefficient"
    D_Coefficient = "D_Coefficient"
    I_Coefficient = "I_Coefficient"
    Minimum_Startup_Force = "Minimum_Startup_Force"
    CW_Dead_Zone = "CW_Dead_Zone"
    CCW_Dead_Zone = "CCW_Dead_Zone"
    Protection_Current = "Protection_Current"
    Angular_Resolution = "Angular_Resolution"
    Protective_Torque = "Protective_Torque"
    Protection_Time = "Protection_Time"
    Overload_Torque = "Overload_Torque"
    Torque_Enable = "Torque_Enable"
    LED = "LED"
    Registered_Instruction = "Registered_Instruction"
    Hardware_Error_Status = "Hardware_Error_Status"
    Velocity_I_Gain = "Velocity_I_Gain"
    Velocity_P_Gain = "Velocity_P_Gain"
    Position_D_Gain = "Position_D_Gain"
    Position_I_Gain = "Position_I_Gain"
    Position_P_Gain = "Position_P_Gain"
    Bus_Watchdog = "Bus_Watchdog"
    Acceleration = "Acceleration"
    Goal_PWM = "Goal_PWM"
    Goal_Current = "Goal_Current"
    Goal_Velocity = "Goal_Velocity"
    Goal_Time = "Goal_Time"
    Profile_Acceleration = "Profile_Acceleration"
    Profile_Velocity = "Profile_Velocity"
    Goal_Position = "Goal_Position"
    Torque_Limit = "Torque_Limit"
    Lock = "Lock"
    Realtime_Tick = "Realtime_Tick"
    Moving = "Moving"
    Moving_Status = "Moving_Status"
    Status = "Status"
    Present_PWM = "Present_PWM"
    Present_Position = "Present_Position"
    Present_Velocity = "Present_Velocity"
    Present_Load = "Present_Load"
    Present_Current = "Present_Current"
    Present_Input_Voltage = "Present_Input_Voltage"
    Present_Voltage = "Present_Voltage"
    Present_Temperature = "Present_Temperature"


def register_name(name: str) -> Reg:
    """The vocabulary entry for ``name``; a typo raises KeyError with the closest names."""
    try:
        return Reg(name)
    except ValueError:
        close = difflib.get_close_matches(str(name), [r.value for r in Reg], n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise KeyError(f"unknown register '{name}'{hint}") from None


@dataclass(frozen=True)
class Register:
    """One control-table entry: ``address`` and ``size`` in bytes, ``writable``, ``sign_bit`` (None: unsigned).

    Feetech encodes signed fields as sign-magnitude with the given sign bit; Dynamixel as two's complement
    over the whole field (sign bit = 8 * size - 1).
    """

    address: int
    size: int
    writable: bool = True
    sign_bit: int | None = None


@dataclass(frozen=True)
class Ratings:
    """What a model reports of its effort and what it can do: datasheet figures (the source beside each record).

    ``effort_full_scale`` is the raw value of ``effort`` that means 100 % (the stall torque or stall current),
    so every model's effort reads as a percentage; ``no_load_speed`` is in ticks/s at the rated voltage.
    """

    effort: Reg  # Present_Load (0.1 % units) or Present_Current (model-specific mA units)
    effort_full_scale: int
    voltage: Reg  # Present_Voltage / Present_Input_Voltage, 0.1 V
    no_load_speed: float  # ticks/s
    temperature_limit_c: int  # the factory Max_Temperature_Limit


@dataclass(frozen=True)
class MotorModel:
    """Everything the drivers and simulator need to know about one servo model."""

    name: str
    family: str  # "feetech" | "dynamixel"
    model_number: int
    resolution: int  # ticks per turn
    registers: Mapping[Reg, Register]
    eeprom_end: int  # registers below this address are EEPROM
    sign_encoding: str  # "sign_magnitude" | "twos_complement"
    baud_rates: Mapping[int, int]  # Baud_Rate register value -> bits per second
    velocity_unit: float  # ticks per second per unit of Present_Velocity / Goal_Velocity
    homing_sign: int  # Present_Position = actual + homing_sign * Homing_Offset
    eeprom_lock: Reg | None = None  # a register that must read 0 for EEPROM writes to stick (1 locks again)
    memory_size: int = 256
    firmware_version: int = 0  # what the simulator reports
    defaults: Mapping[Reg, int] = field(default_factory=dict)  # the simulator's factory values
    ratings: Ratings | None = None

    def register(self, name: str) -> Register:
        entry = self.registers.get(name)  # Reg is a str enum: a plain string finds its entry too
        if entry is not None:
            return entry
        reg = register_name(name)
        try:
            return self.registers[reg]
        except KeyError:
            raise KeyError(f"model {self.name} has no register {reg.value}") from None

    @property
    def homing_offset_limit(self) -> int:
        """Largest |Homing_Offset| the register can encode (STS3215: 2047, sign-magnitude with sign bit 11)."""
        reg = self.register(Reg.Homing_Offset)
        if self.sign_encoding == "sign_magnitude":
            return (1 << reg.sign_bit) - 1
        return (1 << (8 * reg.size - 1)) - 1

    def is_eeprom(self, name: str) -> bool:
        return self.register(name).address < self.eeprom_end

    def encode(self, name: str, value: int) -> int:
        """Signed user integer -> the unsigned field value written on the wire."""
        reg = self.register(name)
        value = int(value)
        if reg.sign_bit is None:
            if not 0 <= value < 1 << (8 * reg.size):
                raise ValueError(f"{reg_label(name)}: {value} does not fit an unsigned {reg.size}-byte field")
            return value
        if self.sign_encoding == "sign_magnitude":
            return encode_sign_magnitude(value, reg.sign_bit)
        return encode_twos_complement(value, reg.size)

    def decode(self, name: str, raw: int) -> int:
        """Unsigned field value read from the wire -> signed user integer."""
        reg = self.register(name)
        if reg.sign_bit is None:
            return int(raw)
        if self.sign_encoding == "sign_magnitude":
            return decode_sign_magnitude(raw, reg.sign_bit)
        return decode_twos_complement(raw, reg.size)

    def baud_value(self, baudrate: int) -> int:
        for value, bps in self.baud_rates.items():
            if bps == baudrate:
                return value
        raise KeyError(f"model {self.name} does not support {baudrate} baud "
                       f"(one of {', '.join(str(b) for b in sorted(self.baud_rates.values()))})")


def reg_label(name) -> str:
    return name.value if isinstance(name, Reg) else str(name)


def le_bytes(value: int, size: int) -> bytes:
    return int(value).to_bytes(size, "little")


def le_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    magnitude = abs(value)
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"{value} does not fit a sign-magnitude field with sign bit {sign_bit}")
    return magnitude | (1 << sign_bit) if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def encode_twos_complement(value: int, size: int) -> int:
    bits = 8 * size
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"{value} does not fit a signed {size}-byte field")
    return value & ((1 << bits) - 1)


def decode_twos_complement(raw: int, size: int) -> int:
    bits = 8 * size
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def _table(entries: dict) -> Mapping[Reg, Register]:
    return MappingProxyType({Reg(name): Register(*spec) for name, spec in entries.items()})


R, RW = False, True

# Feetech SMS/STS memory table (STS3215). EEPROM: addresses 0..39, SRAM from Torque_Enable (40).
_STS_TABLE = _table({
    "Firmware_Major_Version": (0, 1, R), "Firmware_Minor_Version": (1, 1, R), "Model_Number": (3, 2, R),
    "ID": (5, 1), "Baud_Rate": (6, 1), "Return_Delay_Time": (7, 1), "Status_Return_Level": (8, 1),
    "Min_Position_Limit": (9, 2), "Max_Position_Limit": (11, 2), "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1), "Min_Voltage_Limit": (15, 1), "Max_Torque_Limit": (16, 2), "Phase": (18, 1),
    "Unloading_Condition": (19, 1), "LED_Alarm_Condition": (20, 1), "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1), "I_Coefficient": (23, 1), "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1), "CCW_Dead_Zone": (27, 1), "Protection_Current": (28, 2),
    "Angular_Resolution": (30, 1), "Homing_Offset": (31, 2, RW, 11), "Operating_Mode": (33, 1),
    "Protective_Torque": (34, 1), "Protection_Time": (35, 1), "Overload_Torque": (36, 1),
    "Torque_Enable": (40, 1), "Acceleration": (41, 1), "Goal_Position": (42, 2, RW, 15),
    "Goal_Time": (44, 2), "Goal_Velocity": (46, 2, RW, 15), "Torque_Limit": (48, 2), "Lock": (55, 1),
    "Present_Position": (56, 2, R, 15), "Present_Velocity": (58, 2, R, 15), "Present_Load": (60, 2, R, 10),
    "Present_Voltage": (62, 1, R), "Present_Temperature": (63, 1, R), "Status": (65, 1, R),
    "Moving": (66, 1, R), "Present_Current": (69, 2, R, 15),
})

_STS_BAUD = MappingProxyType({0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200, 5: 76_800,
                              6: 57_600, 7: 38_400})

# ROBOTIS X-series control table (Protocol 2.0). EEPROM: addresses 0..63. Signed fields: two's complement.
_X_COMMON = {
    "Model_Number": (0, 2, R), "Model_Information": (2, 4, R), "Firmware_Version": (6, 1, R), "ID": (7, 1),
    "Baud_Rate": (8, 1), "Return_Delay_Time": (9, 1), "Drive_Mode": (10, 1), "Operating_Mode": (11, 1),
    "Secondary_ID": (12, 1), "Protocol_Type": (13, 1), "Homing_Offset": (20, 4, RW, 31),
    "Moving_Threshold": (24, 4), "Max_Temperature_Limit": (31, 1), "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2), "PWM_Limit": (36, 2), "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4), "Min_Position_Limit": (52, 4), "Shutdown": (63, 1),
    "Torque_Enable": (64, 1), "LED": (65, 1), "Status_Return_Level": (68, 1),
    "Registered_Instruction": (69, 1, R), "Hardware_Error_Status": (70, 1, R), "Velocity_I_Gain": (76, 2),
    "Velocity_P_Gain": (78, 2), "Position_D_Gain": (80, 2), "Position_I_Gain": (82, 2),
    "Position_P_Gain": (84, 2), "Bus_Watchdog": (98, 1, RW, 7), "Goal_PWM": (100, 2, RW, 15),
    "Goal_Velocity": (104, 4, RW, 31), "Profile_Acceleration": (108, 4), "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4, RW, 31), "Realtime_Tick": (120, 2, R), "Moving": (122, 1, R),
    "Moving_Status": (123, 1, R), "Present_PWM": (124, 2, R, 15), "Present_Velocity": (128, 4, R, 31),
    "Present_Position": (132, 4, R, 31), "Present_Input_Voltage": (144, 2, R),
    "Present_Temperature": (146, 1, R),
}
# Current-based models (XL330, XM430) have Current_Limit / Goal_Current / Present_Current;
# the XL430 has no current sensing and reports Present_Load at the same address.
_X_CURRENT = _table({**_X_COMMON, "Current_Limit": (38, 2), "Goal_Current": (102, 2, RW, 15),
                     "Present_Current": (126, 2, R, 15)})
_X_LOAD = _table({**_X_COMMON, "Present_Load": (126, 2, R, 15)})

_X_BAUD = MappingProxyType({0: 9_600, 1: 57_600, 2: 115_200, 3: 1_000_000, 4: 2_000_000, 5: 3_000_000,
                            6: 4_000_000, 7: 4_500_000})
_X_VELOCITY_UNIT = 0.229 * 4096 / 60.0  # 0.229 rpm per unit, in ticks/s

# Homing: Feetech stores Present = Actual - Homing_Offset, Dynamixel Present = Actual + Homing_Offset; Feetech's
# EEPROM keeps a write only while Lock is 0 (SMS/STS manual), Dynamixel's only while torque is off.
_FEETECH = dict(family="feetech", resolution=4096, eeprom_end=40, sign_encoding="sign_magnitude",
                baud_rates=_STS_BAUD, velocity_unit=1.0, homing_sign=-1, eeprom_lock=Reg.Lock, memory_size=128)
_DYNAMIXEL = dict(family="dynamixel", resolution=4096, eeprom_end=64, sign_encoding="twos_complement",
                  baud_rates=_X_BAUD, velocity_unit=_X_VELOCITY_UNIT, homing_sign=1, memory_size=256)

# Factory protection values the simulator starts with. STS3215 (7.4 V): the Feetech ST3215 memory table's initial
# values (as reproduced in the python-st3215 README, github.com/Mickael-Roger/python-st3215; not checked against
# a Feetech PDF): Max_Temperature_Limit 70 degC, Max / Min_Voltage_Limit 8.0 / 4.0 V, Unloading_Condition 44
# (overheat | over-current | overload: which alarms cut torque), Protection_Current 500 (x 6.5 mA),
# Protective_Torque 20 % (output after overload protection trips), Protection_Time 200 (x 10 ms),
# Overload_Torque 80 %. All above LeRobot's gripper values (500 / 250 / 25).
_STS3215_PROTECTION = {Reg.Max_Temperature_Limit: 70, Reg.Max_Voltage_Limit: 80, Reg.Min_Voltage_Limit: 40,
                       Reg.Protection_Current: 500, Reg.Overload_Torque: 80, Reg.Protective_Torque: 20,
                       Reg.Protection_Time: 200, Reg.Unloading_Condition: 44}
# ROBOTIS e-Manual control tables (emanual.robotis.com/docs/en/dxl/x/<model>/): Temperature_Limit,
# Max / Min_Voltage_Limit (0.1 V), Current_Limit, Shutdown (which alarms cut torque: 52 = overheat | electrical
# shock | overload; the XL330-M288's table gives 53, input voltage too).
_XL330_PROTECTION = {Reg.Max_Temperature_Limit: 70, Reg.Max_Voltage_Limit: 70, Reg.Min_Voltage_Limit: 35,
                     Reg.Current_Limit: 1750, Reg.Shutdown: 53}
_XL430_PROTECTION = {Reg.Max_Temperature_Limit: 72, Reg.Max_Voltage_Limit: 140, Reg.Min_Voltage_Limit: 60,
                     Reg.Shutdown: 52}
_XM430_PROTECTION = {Reg.Max_Temperature_Limit: 80, Reg.Max_Voltage_Limit: 160, Reg.Min_Voltage_Limit: 95,
                     Reg.Current_Limit: 1193, Reg.Shutdown: 52}

_RPM = 4096 / 60.0  # ticks/s per rev/min
# STS3215 (7.4 V, C001): 0.222 s / 60 degrees unloaded (about 45 rev/min), Present_Load 0..1000 = 0..100 %,
# factory Max_Temperature_Limit 70 degC (Feetech STS3215 datasheet and memory table; REFERENCE.md section 11).
_STS3215_RATINGS = Ratings(Reg.Present_Load, 1000, Reg.Present_Voltage, 60.0 / 360 * 4096 / 0.222, 70)
# ROBOTIS e-Manual: XL330-M288 stall 1.47 A at 5.0 V (Present_Current unit 1 mA), 103 rev/min, limit 70 degC;
# XL430-W250 Present_Load 0.1 %, 57 rev/min at 11.1 V, limit 72 degC; XM430-W350 stall 2.3 A at 12 V
# (Present_Current unit 2.69 mA: 855 units), 46 rev/min, limit 80 degC.
_XL330_RATINGS = Ratings(Reg.Present_Current, 1470, Reg.Present_Input_Voltage, 103 * _RPM, 70)
_XL430_RATINGS = Ratings(Reg.Present_Load, 1000, Reg.Present_Input_Voltage, 57 * _RPM, 72)
_XM430_RATINGS = Ratings(Reg.Present_Current, 855, Reg.Present_Input_Voltage, 46 * _RPM, 80)

MODELS: Mapping[str, MotorModel] = MappingProxyType({m.name: m for m in (
    MotorModel("sts3215", model_number=777, registers=_STS_TABLE, firmware_version=3,
               defaults=MappingProxyType({Reg.Baud_Rate: 0, Reg.Status_Return_Level: 1, Reg.Max_Torque_Limit: 1000,
                                          Reg.Torque_Limit: 1000, Reg.Present_Voltage: 74,
                                          Reg.Present_Temperature: 30, Reg.P_Coefficient: 32,
                                          **_STS3215_PROTECTION}),
               ratings=_STS3215_RATINGS, **_FEETECH),
    MotorModel("xl330-m288", model_number=1200, registers=_X_CURRENT, firmware_version=52,
               defaults=MappingProxyType({Reg.Baud_Rate: 1, Reg.Operating_Mode: 3, Reg.Status_Return_Level: 2,
                                          Reg.Present_Input_Voltage: 50, Reg.Present_Temperature: 30,
                                          Reg.Velocity_Limit: 445, Reg.PWM_Limit: 885, **_XL330_PROTECTION}),
               ratings=_XL330_RATINGS, **_DYNAMIXEL),
    MotorModel("xl430-w250", model_number=1060, registers=_X_LOAD, firmware_version=46,
               defaults=MappingProxyType({Reg.Baud_Rate: 1, Reg.Operating_Mode: 3, Reg.Status_Return_Level: 2,
                                          Reg.Present_Input_Voltage: 120, Reg.Present_Temperature: 30,
                                          Reg.Velocity_Limit: 265, Reg.PWM_Limit: 885, **_XL430_PROTECTION}),
               ratings=_XL430_RATINGS, **_DYNAMIXEL),
    MotorModel("xm430-w350", model_number=1020, registers=_X_CURRENT, firmware_version=46,
               defaults=MappingProxyType({Reg.Baud_Rate: 1, Reg.Operating_Mode: 3, Reg.Status_Return_Level: 2,
                                          Reg.Present_Input_Voltage: 120, Reg.Present_Temperature: 30,
                                          Reg.Velocity_Limit: 200, Reg.PWM_Limit: 885, **_XM430_PROTECTION}),
               ratings=_XM430_RATINGS, **_DYNAMIXEL),
)})

FAMILIES = ("feetech", "dynamixel")


def motor_model(name: str) -> MotorModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown motor model '{name}' (one of {', '.join(MODELS)})") from None
