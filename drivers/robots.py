"""Robot definitions: named buses of motors, and the action groups a policy drives.

A robot is data: buses (family, baud rate, motors with ID, model and normalisation mode) and ordered action
groups of joint names. ``so100`` and ``koch`` are built in; any other robot comes from a TOML file.
Each motor also carries the calibration the simulator starts with (``sim_calibration``), so a simulated
robot is usable before anyone has calibrated it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actsac.drivers.units import MotorCalibration

from .errors import RobotSpecError


@dataclass(frozen=True)
class MotorSpec:
    name: str
    id: int
    model: str  # a key of the control-table registry, e.g. "sts3215", "xl330-m288"
    norm_mode: str = "range_m100_100"
    sim_calibration: MotorCalibration | None = None  # the simulator's factory calibration for this joint
    full_turn: bool = False  # turns without end stops: calibration gives it the whole turn (e.g. a wrist roll)
    gripper: bool = False  # closes on objects: its protection registers are checked (drivers/protection.py)


@dataclass(frozen=True)
class BusSpec:
    name: str
    family: str  # "feetech" | "dynamixel"
    motors: tuple[MotorSpec, ...]
    baudrate: int = 1_000_000


@dataclass(frozen=True)
class CameraSpec:
    """A camera of a robot (``drivers/cameras.py``): ``source`` None is the simulator's camera (a real robot
    then needs ``--camera NAME=SOURCE``); width / height / fps are asked of a real source where given, and a
    simulated camera renders at the model's size."""

    name: str
    source: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


@dataclass(frozen=True)
class RobotSpec:
    name: str
    buses: tuple[BusSpec, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (group name, joint names) in policy order
    max_step: dict[str, float] = field(default_factory=dict)  # safety: max command change per tick, user units
    cameras: tuple[CameraSpec, ...] = ()
    health: dict = field(default_factory=dict)  # motor-health limits from the robot file: {"" or motor: {...}}

    def camera(self, name: str) -> CameraSpec | None:
        return next((c for c in self.cameras if c.name == name), None)

    @property
    def motors(self) -> list[MotorSpec]:
        return [m for bus in self.buses for m in bus.motors]

    @property
    def joint_names(self) -> list[str]:
        return [j for _, joints in self.groups for j in joints]

    def motor(self, name: str) -> MotorSpec:
        for m in self.motors:
            if m.name == name:
                return m
        raise KeyError(f"robot '{self.name}' has no motor '{name}'")


def _sim_cal(motor_id: int, lo: int, hi: int) -> MotorCalibration:
    return MotorCalibration(id=motor_id, drive_mode=0, homing_offset=0, range_min=lo, range_max=hi)


SO100_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# Simulated ranges in ticks, in the spirit of a real calibrated SO-100 (wrist_roll turns fully). Each range is
# under half a turn wide (2046 ticks, centred on 2048): however the arm is posed when it is homed to mid-scale,
# its whole range then stays inside one turn, so calibrating on the simulator never wraps.
_SO100_SIM_RANGES = {"shoulder_pan": (1025, 3071), "shoulder_lift": (1025, 3071), "elbow_flex": (1025, 3071),
                     "wrist_flex": (1025, 3071), "wrist_roll": (0, 4095), "gripper": (2000, 3000)}

SO100 = RobotSpec(
    name="so100",
    buses=(BusSpec("main", "feetech", tuple(
        MotorSpec(name, i + 1, "sts3215", "range_0_100" if name == "gripper" else "range_m100_100",
                  _sim_cal(i + 1, *_SO100_SIM_RANGES[name]), full_turn=name == "wrist_roll",
                  gripper=name == "gripper")
        for i, name in enumerate(SO100_JOINTS))),),
    groups=(("arm", SO100_JOINTS),),
    max_step={name: 10.0 for name in SO100_JOINTS},
    cameras=(CameraSpec("front", fps=30.0),),  # simulated; on the real arm: --camera front=/dev/video0
)

# Koch v1.1 follower: XL430-W250 on the two shoulder joints, XL330-M288 from the elbow on, 1 Mbps.
_KOCH_MODELS = {"shoulder_pan": "xl430-w250", "shoulder_lift": "xl430-w250"}
KOCH = RobotSpec(
    name="koch",
    buses=(BusSpec("main", "dynamixel", tuple(
        MotorSpec(name, i + 1, _KOCH_MODELS.get(name, "xl330-m288"),
                  "range_0_100" if name == "gripper" else "range_m100_100",
                  _sim_cal(i + 1, *_SO100_SIM_RANGES[name]), full_turn=name == "wrist_roll",
                  gripper=name == "gripper")
        for i, name in enumerate(SO100_JOINTS))),),
    groups=(("arm", SO100_JOINTS),),
    max_step={name: 10.0 for name in SO100_JOINTS},
    cameras=(CameraSpec("front", fps=30.0),),  # simulated; on the real arm: --camera front=/dev/video0
)

BUILT_IN = {"so100": SO100, "koch": KOCH}


def load_robot(name_or_path) -> RobotSpec:
    """A built-in robot by name (``so100``, ``koch``; ``upper_body`` from the packaged TOML) or a TOML file.

    Raises RobotSpecError with a one-line message naming the file and the field that is wrong.
    """
    from .robot_toml import parse_robot_toml  # it imports this module: import it late

    key = str(name_or_path)
    if key in BUILT_IN:
        return BUILT_IN[key]
    packaged = Path(__file__).parent / "robots" / f"{key}.toml"
    if "/" not in key and packaged.is_file():
        return parse_robot_toml(packaged)
    path = Path(key)
    if path.suffix != ".toml" and not path.exists():
        raise RobotSpecError(f"unknown robot '{key}' (built in: {', '.join(BUILT_IN)}, upper_body; "
                             "or a path to a .toml file)")
    return parse_robot_toml(path)


def parse_ports(arg: str, spec: RobotSpec) -> dict[str, str]:
    """A port argument as given on a command line -> {bus name: port}: one path for a one-bus robot,
    ``bus=PATH,bus2=PATH`` for several. Raises RobotSpecError naming the bus that is missing or unknown."""
    buses = [b.name for b in spec.buses]
    if "=" not in arg:
        if len(buses) != 1:
            raise RobotSpecError(f"robot '{spec.name}' has {len(buses)} buses ({', '.join(buses)}): "
                                 f"give a port per bus, {buses[0]}=PORT,{buses[1]}=PORT,...")
        return {buses[0]: arg}
    ports = dict(item.split("=", 1) if "=" in item else (item, "") for item in arg.split(",") if item)
    unknown = [b for b in ports if b not in buses]
    if unknown:
        raise RobotSpecError(f"robot '{spec.name}' has no bus '{unknown[0]}' (buses: {', '.join(buses)})")
    missing = [b for b in buses if not ports.get(b)]
    if missing:
        raise RobotSpecError(f"no port for bus '{missing[0]}' of robot '{spec.name}'")
    return ports
