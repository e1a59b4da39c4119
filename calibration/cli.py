"""`actsac-calibrate`: calibrate a robot's joints and save a LeRobot-compatible calibration file.

Without --port the flow runs against the simulator (a scripted hand moves the joints), so it can be tried
and tested without hardware.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import time
from pathlib import Path

from actsac._cli import fail, first_line

EXAMPLES = """examples:
  actsac-calibrate --robot so100 --port /dev/ttyACM0 --id my_arm     # interactive calibration
  actsac-calibrate --robot so100                                      # the same flow on the simulator
  actsac-calibrate --robot so100 --id my_arm --import ~/lerobot/calibration/my_arm.json
  actsac-calibrate --robot so100 --port /dev/ttyACM0 --id my_arm --check --duration 10
  actsac-calibrate --robot so100 --port /dev/ttyACM0 --protect-gripper   # the gripper's safe limits, once

files: <dir>/<robot>/<id>.json, <dir> = $ACTSAC_CALIBRATION_DIR or ~/.cache/actsac/calibration
       (or --calibration-dir); --file names the file directly.
--check is read-only: it converts each reading through the file's calibration on the host and writes no
offset or limit to the motors (the runtime does that when it connects).
A range narrower than 10 % of a turn or not containing the homed centre is refused (exit 1, nothing saved);
--import and --check warn (one line on stderr) when the file's folder names another robot or its ranges fail
those checks.
exit codes: 0 done, 1 bad input or a bus failure (one line on stderr), 2 bad command line, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actsac-calibrate", description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", default="so100", help="built-in robot (so100, koch, upper_body) or a robot TOML file")
    p.add_argument("--port", help="serial port (BUS=PORT,... for a robot with several buses); "
                                  "omitted: use the simulator")
    p.add_argument("--id", default="default", help="name of this particular robot (the file name); default: default")
    p.add_argument("--file", type=Path, help="calibration file to write (or read with --check); overrides --id")
    p.add_argument("--calibration-dir", type=Path,
                   help="root of the calibration files (default $ACTSAC_CALIBRATION_DIR or ~/.cache/actsac/calibration)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--import", dest="import_file", type=Path, metavar="FILE",
                      help="validate an existing (e.g. LeRobot) calibration file and copy it into place")
    mode.add_argument("--check", action="store_true",
                      help="print live normalised joint positions through the saved calibration (read-only: "
                           "writes nothing to the motors)")
    mode.add_argument("--protect-gripper", action="store_true",
                      help="write the safe protection values to the grippers left at factory limits (as "
                           "actsac-run --gripper-protection write does; drivers/protection.py) and exit")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="with --check: stop after this long instead of at ENTER")
    p.add_argument("--full-turn", action="append", metavar="JOINT",
                   help="a joint without end stops, given the whole turn (repeatable; default: the robot's "
                        "full_turn motors, wrist_roll on so100 and koch)")
    return p


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through the finally blocks: torque off, port closed


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    from actsac.drivers.errors import BusError, RobotSpecError
    from actsac.drivers.robots import load_robot

    from .files import (CalibrationError, default_calibration_path, fit_warnings, import_calibration,
                        load_calibration)

    if args.duration is not None and (not args.check or not 0 < args.duration < math.inf):
        fail("--duration: needs --check and a positive number of seconds", 2)
    try:
        spec = load_robot(args.robot)
        dest = args.file or default_calibration_path(spec.name, args.id, args.calibration_dir)
        if args.import_file is not None:
            calibration = import_calibration(args.import_file, dest, spec)
            _warn(args.import_file, fit_warnings(calibration, spec, args.import_file))
            print(f"imported {args.import_file} -> {dest}")
            return
        calibration = load_calibration(dest, spec) if args.check else None
        if calibration is not None:
            _warn(dest, fit_warnings(calibration, spec, dest))
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            _run(args, spec, dest, calibration, args.full_turn)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except (CalibrationError, RobotSpecError, BusError) as exc:
        fail(first_line(exc))
    except (OSError, EOFError) as exc:
        fail(first_line(exc))
    except KeyboardInterrupt:
        print("interrupted: torque is off, nothing was saved", file=sys.stderr)
        raise SystemExit(130)


def _warn(source, warnings: list[str]) -> None:
    """At most one line on stderr: the first warning, and how many more there are."""
    if warnings:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        print(f"warning: {source}: {warnings[0]}{more}", file=sys.stderr, flush=True)


def _run(args, spec, dest: Path, calibration, full_turn) -> None:
    from actsac.drivers.bus import disconnect_all, make_bus
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.robots import parse_ports

    from .files import save_calibration

    if args.port is None:
        from actsac.drivers.sim import SweepHand, simulate

        print(f"using the simulator for robot '{spec.name}' (no --port given); a scripted hand moves the joints",
              flush=True)
        # calibrating, the hand holds the arm still until it is homed, as a person would, then sweeps it
        ports_cm = simulate(spec, hand="sweep" if args.check else SweepHand(wait_for_homing=True))
    else:
        try:
            ports_cm = contextlib.nullcontext(parse_ports(args.port, spec))
        except RobotSpecError as exc:
            raise RobotSpecError(f"--port: {exc}") from None
    with ports_cm as ports:
        if args.protect_gripper:
            _protect_grippers(spec, ports)
            return
        buses = [make_bus(b, ports[b.name], timeout_s=0.05, budget_s=1.0) for b in spec.buses]
        try:
            for bus in buses:
                bus.connect()
            if args.check:
                _check(buses, spec, calibration, args.duration)
            else:
                from .procedure import EnterWatcher, calibrate

                result = calibrate(buses, EnterWatcher(), sys.stdout, full_turn)
                save_calibration(dest, {m.name: result[m.name] for m in spec.motors})
                print(f"saved {dest}")
        except BaseException:
            disconnect_all(buses)  # every bus, even when one fails; the first error is the one to report
            raise
        error = disconnect_all(buses)
        if error is not None:
            raise error


def _protect_grippers(spec, ports) -> None:
    """Write the safe protection values where a gripper is looser (EEPROM, torque off) and say what changed;
    no calibration is written."""
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.protection import (changes_text, grippers, read_protection, unchecked, unsafe,
                                           write_protection)
    from actsac.drivers.robot import Robot

    robot = Robot(spec, ports)
    try:
        robot.connect()
        if not grippers(robot):
            raise RobotSpecError(f"robot '{spec.name}' has no gripper (a robot file marks one with gripper = true)")
        readings = read_protection(robot)
        loose = unsafe(robot, readings)
        write_protection(robot, readings)
        skipped = unchecked(robot)
    finally:
        robot.close()  # torque off, ports closed
    if loose:
        print(f"gripper protection written: {changes_text(loose)}")
    for motor, model in skipped.items():
        print(f"gripper {motor}: no known safe values for a {model}, nothing written")
    if not loose and len(skipped) < len(readings):
        print("gripper protection: already at the safe values, nothing written")


CHECK_TOLERANCE = 0.02  # share of a turn a reading may lie outside the file's range before --check warns


def _check(buses, spec, calibration, duration_s: float | None) -> None:
    """Show every joint in its user unit through the file's calibration until ENTER or --duration.

    Read-only: each reading is converted on the host to what the motor would read holding the file's offset
    (Present = Actual + homing_sign * Homing_Offset; Feetech's wraps within the turn). A reading outside the
    file's range is one warning line at the end: the file may be for another robot or arm.
    """
    from actsac.drivers.tables import motor_model
    from actsac.drivers.units import normalize

    from .procedure import REFRESH_PERIOD_S, EnterWatcher, LiveTable

    models = {m.name: motor_model(m.model) for m in spec.motors}
    held = {}
    for bus in buses:
        held.update(bus.sync_read("Homing_Offset"))

    def through_file(name: str, present: int) -> int:
        model = models[name]
        value = present + model.homing_sign * (calibration[name].homing_offset - held[name])
        return value % model.resolution if model.family == "feetech" else value

    motors = spec.motors
    table = LiveTable(sys.stdout, ["joint", "raw", "value", "unit"])
    print("live positions" + (f" for {duration_s:g} s" if duration_s else "; press ENTER to stop"), flush=True)
    enter = EnterWatcher() if duration_s is None else None
    end_s = time.monotonic() + duration_s if duration_s else None
    rows = []
    outside: dict[str, int] = {}  # joint -> first reading beyond its range (+ tolerance)
    while True:
        raw = {}
        for bus in buses:
            raw.update({name: through_file(name, v) for name, v in bus.sync_read("Present_Position").items()})
        for m in motors:
            cal, slack = calibration[m.name], CHECK_TOLERANCE * models[m.name].resolution
            if not cal.range_min - slack <= raw[m.name] <= cal.range_max + slack:
                outside.setdefault(m.name, raw[m.name])
        rows = [(m.name, raw[m.name],
                 f"{float(normalize(raw[m.name], calibration[m.name], m.norm_mode, models[m.name].resolution)):.1f}",
                 m.norm_mode) for m in motors]
        table.show(rows)
        if (end_s is not None and time.monotonic() >= end_s) or (enter is not None and _enter_or_eof(enter)):
            break
        time.sleep(REFRESH_PERIOD_S / 2)
    table.final(rows)
    if outside:
        name, value = next(iter(outside.items()))
        cal = calibration[name]
        more = f" (and {len(outside) - 1} more joints)" if len(outside) > 1 else ""
        print(f"warning: joint '{name}' read {value} ticks through the file, outside its range "
              f"{cal.range_min}..{cal.range_max}{more}: is the file for this robot and this arm?",
              file=sys.stderr, flush=True)


def _enter_or_eof(enter) -> bool:
    try:
        return enter.pressed()
    except EOFError:
        return True


if __name__ == "__main__":
    main()
