"""`actsac-sim`: serve a robot's simulated servo buses on pseudo-terminals until Ctrl-C / SIGTERM.

The first stdout line is ``port: /dev/pts/N`` (one ``port <bus>: /dev/pts/N`` line per bus for a robot with
several buses), flushed, so a script can start the simulator and read where to connect.
"""

from __future__ import annotations

import argparse

from actsac._cli import fail

EXAMPLES = """examples:
  actsac-sim --robot so100
  actsac-sim --robot koch --hand sweep            # torque-off joints sweep their range (for calibration)
  actsac-sim --robot upper_body --drop 0.01 --corrupt 0.01 --seed 3
  actsac-sim --robot so100 --silent elbow_flex:5 --hw-error gripper:overload
  actsac-sim --robot so100 --blocked gripper:40 --heat gripper:20   # an object in the gripper, fast heating
  actsac-sim --robot koch --stall elbow_flex:5 --voltage-drop shoulder_pan:5.5 --voltage-drop-after 10
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actsac-sim", description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", default="so100", help="built-in robot (so100, koch, upper_body) or a robot TOML file")
    p.add_argument("--no-wire-time", action="store_true",
                   help="answer at once instead of at the time the configured baud rate allows")
    p.add_argument("--hand", choices=["none", "sweep"], default="none",
                   help="scripted motion of torque-off joints: sweep each through its sim range")
    p.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    faults = p.add_argument_group("fault injection")
    faults.add_argument("--drop", type=float, default=0.0, metavar="P", help="probability a reply is dropped")
    faults.add_argument("--corrupt", type=float, default=0.0, metavar="P",
                        help="probability one byte of a reply is flipped")
    faults.add_argument("--late", type=float, default=0.0, metavar="P", help="probability a reply comes late")
    faults.add_argument("--late-ms", type=float, default=50.0, metavar="MS", help="how late a late reply is")
    faults.add_argument("--fault-motors", metavar="A,B", help="limit drop/corrupt/late to these motors")
    faults.add_argument("--faults-after", type=float, default=0.0, metavar="SECONDS",
                        help="drop/corrupt/late begin this long after start")
    faults.add_argument("--silent", action="append", default=[], metavar="MOTOR:SECONDS",
                        help="the motor stops answering SECONDS after start (repeatable)")
    faults.add_argument("--hw-error", action="append", default=[], metavar="MOTOR:ERROR[,ERROR]",
                        help="hardware error bits: overload, overheat, input voltage, ... (repeatable)")
    faults.add_argument("--hw-error-after", type=float, default=0.0, metavar="SECONDS",
                        help="when the hardware errors appear")
    health = p.add_argument_group("motor health faults (effort, temperature, voltage)")
    health.add_argument("--blocked", action="append", default=[], metavar="MOTOR:POSITION",
                        help="the joint cannot pass POSITION (its user unit under the simulator's calibration, "
                             "e.g. 0..100 for a gripper), as with an object in the gripper: pushing on it raises "
                             "effort and temperature (repeatable)")
    health.add_argument("--stall", action="append", default=[], metavar="MOTOR:SECONDS",
                        help="the motor's shaft sticks where it is SECONDS after start (repeatable)")
    health.add_argument("--heat", action="append", default=[], metavar="MOTOR:FACTOR",
                        help="the motor heats FACTOR times faster (an overheating motor; 20 reaches the "
                             "temperature limit within seconds of pushing at full effort) (repeatable)")
    health.add_argument("--voltage-drop", action="append", default=[], metavar="MOTOR:VOLTS",
                        help="the motor's supply falls to VOLTS (after --voltage-drop-after); outside the "
                             "motor's voltage limits it reports an input voltage error (repeatable)")
    health.add_argument("--voltage-drop-after", type=float, default=0.0, metavar="SECONDS",
                        help="when the supply falls, seconds after start (default: at once)")
    return p


def _numbers(items: list[str], flag: str, robot, what: str, positive: bool = False) -> dict[str, float]:
    """MOTOR:NUMBER pairs -> {motor: number}; a bad one is a one-line error naming the flag."""
    out = {}
    for motor, value in _pairs(items, flag, robot):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number != number or (positive and number <= 0):
            fail(f"{flag} {motor}:{value}: {what} must be a {'positive ' if positive else ''}number")
        out[motor] = number
    return out


def _pairs(items: list[str], flag: str, robot) -> list[tuple[str, str]]:
    out = []
    for item in items:
        motor, sep, value = item.partition(":")
        if not sep or not value:
            fail(f"{flag} {item!r}: expected MOTOR:VALUE")
        try:
            robot.motor(motor)
        except KeyError as exc:
            fail(f"{flag} {item!r}: {exc.args[0]}")
        out.append((motor, value))
    return out


def make_faults(args, robot):
    from .sim import Faults
    from .sim.server import HARDWARE_ERRORS

    for flag in ("drop", "corrupt", "late"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            fail(f"--{flag} {getattr(args, flag)}: a probability must be within 0..1")
    silent = {}
    for motor, value in _pairs(args.silent, "--silent", robot):
        try:
            silent[motor] = float(value)
        except ValueError:
            fail(f"--silent {motor}:{value}: SECONDS must be a number")
    hw = {}
    for motor, value in _pairs(args.hw_error, "--hw-error", robot):
        words = tuple(w.strip() for w in value.split(","))
        family = next(b.family for b in robot.buses if any(m.name == motor for m in b.motors))
        bad = [w for w in words if w not in HARDWARE_ERRORS[family]]
        if bad:
            fail(f"--hw-error {motor}:{value}: unknown {family} hardware error {bad[0]!r} "
                 f"(one of {', '.join(sorted(HARDWARE_ERRORS[family]))})")
        hw[motor] = words
    motors = None
    if args.fault_motors:
        motors = tuple(m.strip() for m in args.fault_motors.split(","))
        _pairs([f"{m}:x" for m in motors], "--fault-motors", robot)
    return Faults(drop_prob=args.drop, corrupt_prob=args.corrupt, late_prob=args.late, late_s=args.late_ms / 1e3,
                  silent_after_s=silent, hardware_errors=hw, hardware_error_after_s=args.hw_error_after,
                  motors=motors, start_after_s=args.faults_after,
                  blocked=_numbers(args.blocked, "--blocked", robot, "POSITION"),
                  stalled_after_s=_numbers(args.stall, "--stall", robot, "SECONDS"),
                  heat_scale=_numbers(args.heat, "--heat", robot, "FACTOR", positive=True),
                  voltage_drop=_numbers(args.voltage_drop, "--voltage-drop", robot, "VOLTS", positive=True),
                  voltage_drop_after_s=args.voltage_drop_after)


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    from .errors import RobotSpecError
    from .robots import load_robot
    from .sim import Server, SweepHand
    from .sim.server import serve_until_signal

    try:
        robot = load_robot(args.robot)
    except RobotSpecError as exc:
        fail(str(exc))
    faults = make_faults(args, robot)
    try:
        server = Server(robot, wire_time=not args.no_wire_time, faults=faults,
                        hand=SweepHand() if args.hand == "sweep" else None, seed=args.seed)
    except OSError as exc:
        fail(f"could not create a pseudo-terminal: {exc}")
    if len(server.ports) == 1:
        lines = [f"port: {port}" for port in server.ports.values()]
    else:
        lines = [f"port {name}: {port}" for name, port in server.ports.items()]
    serve_until_signal(server, on_ready=lambda: print("\n".join(lines), flush=True))


if __name__ == "__main__":
    main()
