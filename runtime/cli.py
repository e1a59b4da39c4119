"""`actsac-run`: run an exported ACT-SAC policy on a robot at a fixed rate, with asynchronous chunked inference.

    actsac-run                                  # the example policy on a simulated SO-100
    actsac-run --robot so100 --port /dev/ttyACM0 --calibration so100.json --model actor.onnx --duration 30
"""

from __future__ import annotations

import argparse
import signal
import sys

try:  # Ctrl-C while these load (about 0.1 s) is an interrupt before anything is powered, not a traceback
    from actsac._cli import fail
    from actsac.drivers.sim import SimOptions
    from actsac.options import OptionError, add_options, from_args

    from .config import RunConfig
    from .errors import RunRefused
    from .session import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SAFETY_STOP, EXIT_USER_ERROR, run
except KeyboardInterrupt:
    sys.stderr.write("error: interrupted: the motors are not powered\n")
    raise SystemExit(130) from None

EXIT_USAGE = 2

EPILOG = f"""\
Without --port the robot's simulated buses are started (one per bus of the robot). Without --model the
example policy shipped with actsac (runtime/assets/so100_reach.onnx, SO-100) runs.

exit codes:
  {EXIT_OK}    the run ended as asked (--duration reached)
  {EXIT_USER_ERROR}    refused before torque was enabled (model, robot, port, calibration, option)
  {EXIT_USAGE}    bad command line (an unknown option, a value out of its range)
  {EXIT_SAFETY_STOP}    safety stop: inference stalled, bus failures, ... (robot brought to its safe state)
  {EXIT_ERROR}    unexpected error during the run (robot brought to its safe state)
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C or SIGTERM (robot brought to its safe state)
"""


def build_parser() -> argparse.ArgumentParser:
    """Every option is a field of RunConfig (its safety group: SafetySettings) or of the simulator's SimOptions."""
    p = argparse.ArgumentParser(prog="actsac-run", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p, RunConfig)
    add_options(p, SimOptions, p.add_argument_group("simulator (without --port)"))
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    config, sim = from_args(RunConfig, args), from_args(SimOptions, args)
    try:
        config.validate()
    except OptionError as exc:
        fail(str(exc), EXIT_USAGE)
    # SIGTERM like Ctrl-C while nothing is powered (loading, connecting, reporting); the run itself installs
    # its own handlers, which stop the loop and go through the safe state.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        summary = run(config, sim=sim, log=lambda line: print(line, flush=True))
    except RunRefused as exc:
        fail(str(exc), EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before torque was enabled, or after the safe state was reached
        fail("interrupted: the motors are not powered", EXIT_INTERRUPTED)
    if summary["exit_code"] != EXIT_OK:
        print(f"actsac-run: {summary['exit_reason']}", file=sys.stderr, flush=True)
    raise SystemExit(summary["exit_code"])


if __name__ == "__main__":
    main()
