"""`actsac-run`: run an exported ACT-SAC policy on a robot at a fixed rate, with asynchronous chunked inference.

    actsac-run                                  # the example policy on a simulated SO-100
    actsac-run --robot so100 --port /dev/ttyACM0 --calibration so100.json --model actor.onnx --duration 30
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from actsac._cli import UserError, fail

from .backends import BACKENDS, ORT_THREADS
from .safety import SafetySettings
from .session import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SAFETY_STOP, EXIT_USER_ERROR, RunConfig,
                      run)

EPILOG = f"""\
Without --port the robot's simulated buses are started (one per bus of the robot). Without --model the
example policy shipped with actsac (runtime/assets/so100_reach.onnx, SO-100) runs.

exit codes:
  {EXIT_OK}    the run ended as asked (--duration reached)
  {EXIT_USER_ERROR}    refused before torque was enabled (model, robot, port, calibration, option)
  2    bad command line
  {EXIT_SAFETY_STOP}    safety stop: inference stalled, bus failures, ... (robot brought to its safe state)
  {EXIT_ERROR}    unexpected error during the run (robot brought to its safe state)
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C or SIGTERM (robot brought to its safe state)
"""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _floats(text: str) -> list[float]:
    try:
        return [_finite(v) for v in text.replace(" ", "").split(",") if v]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of finite numbers") from None


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="actsac-run", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", default="so100", help="built-in robot (so100, koch) or a robot .toml file (default so100)")
    p.add_argument("--port", help="serial port (one-bus robot) or bus=PORT,bus2=PORT; default: the simulator")
    p.add_argument("--model", type=Path, help="exported actor (.onnx); default: the shipped example policy")
    p.add_argument("--fps", type=_positive(float), help="control rate in Hz (default: the model's control_hz)")
    p.add_argument("--exec", dest="exec_mode", choices=("ensemble", "chunk"), default="ensemble",
                   help="ensemble: ACT temporal ensembling of every chunk covering a tick; chunk: run K steps "
                        "of each chunk open loop (default ensemble)")
    p.add_argument("--ensemble-coeff", type=_finite, default=0.01,
                   help="ensembling weight exp(-m * i), i = 0 the oldest chunk (default 0.01)")
    p.add_argument("--n-action-steps", type=_positive(int), metavar="K",
                   help="chunk mode: steps of each chunk to execute (default: the chunk size)")
    p.add_argument("--backend", choices=BACKENDS, default="ort",
                   help="ort: ONNX Runtime (default); trt: the TensorRT engine beside the .onnx; "
                        "torch: eager PyTorch on the model.pt beside the .onnx")
    p.add_argument("--threads", type=_positive(int), default=ORT_THREADS, help="inference threads (default 2)")
    p.add_argument("--stochastic", action="store_true",
                   help="sample tanh(mean + std * eps) instead of the deterministic action")
    p.add_argument("--seed", type=int, default=0, help="seed of --stochastic sampling (and simulator faults)")
    p.add_argument("--duration", type=_positive(float), help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--goal", type=_floats, metavar="V1,V2,...",
                   help="goal for the model's <joint>.goal features, in their order and unit (default: cycle "
                        "the model's task goals); write --goal=-10,20,... when the first value is negative")
    p.add_argument("--calibration", type=Path, help="calibration file (required on a real port; see actsac-calibrate)")
    p.add_argument("--record", type=Path, metavar="DIR", help="write ticks.jsonl (per tick) and run.png here")
    p.add_argument("--summary-json", type=Path, metavar="FILE", help="write the end-of-run summary here")
    safety = p.add_argument_group("safety")
    d = SafetySettings()
    safety.add_argument("--ramp-s", type=_non_negative, default=d.ramp_s,
                        help=f"soft start: seconds to blend from the measured pose into the policy (default {d.ramp_s})")
    safety.add_argument("--max-step", type=_positive(float),
                        help="max command change per tick, user units, every joint (default: the robot's)")
    safety.add_argument("--stall-timeout-s", type=_positive(float), default=d.stall_timeout_s,
                        help=f"stop after this long without a valid action (default {d.stall_timeout_s})")
    safety.add_argument("--max-bus-failures", type=_positive(int), default=d.max_bus_failures,
                        help=f"stop after this many failed reads or writes in a row (default {d.max_bus_failures})")
    safety.add_argument("--obs-max-age-s", type=_non_negative, default=d.obs_max_age_s,
                        help=f"a failed read reuses the last observation up to this age (default {d.obs_max_age_s})")
    safety.add_argument("--stop-hold-s", type=_non_negative, default=d.stop_hold_s,
                        help=f"on stop: hold the pose this long, then torque off (default {d.stop_hold_s})")
    p.add_argument("--realtime", action="store_true",
                   help="run with SCHED_FIFO priority, as chrt -f does (Linux; needs root, CAP_SYS_NICE or an "
                        "rtprio limit; otherwise the run continues at normal priority)")
    p.add_argument("--no-wire-time", dest="wire_time", action="store_false",
                        help="simulator only: do not emulate the bus's baud rate")
    args = p.parse_args(argv)
    if args.n_action_steps is not None and args.exec_mode != "chunk":
        p.error("--n-action-steps applies to --exec chunk")
    return args


def config_from_args(args: argparse.Namespace) -> RunConfig:
    safety = SafetySettings(ramp_s=args.ramp_s, max_step=args.max_step, stall_timeout_s=args.stall_timeout_s,
                            max_bus_failures=args.max_bus_failures, obs_max_age_s=args.obs_max_age_s,
                            stop_hold_s=args.stop_hold_s)
    return RunConfig(robot=args.robot, port=args.port, model=args.model, fps=args.fps, exec_mode=args.exec_mode,
                     ensemble_coeff=args.ensemble_coeff, n_action_steps=args.n_action_steps, backend=args.backend,
                     stochastic=args.stochastic, seed=args.seed, duration_s=args.duration, record=args.record,
                     summary_json=args.summary_json, goal=args.goal, calibration=args.calibration, safety=safety,
                     threads=args.threads, wire_time=args.wire_time, realtime=args.realtime)


def main(argv=None) -> None:
    args = parse_args(argv)
    # SIGTERM like Ctrl-C while nothing is powered (loading, connecting, reporting); the run itself installs
    # its own handlers, which stop the loop and go through the safe state.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        summary = run(config_from_args(args), log=lambda line: print(line, flush=True))
    except UserError as exc:
        fail(str(exc), EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before torque was enabled, or after the safe state was reached
        fail("interrupted: the motors are not powered", EXIT_INTERRUPTED)
    if summary["exit_code"] != EXIT_OK:
        print(f"actsac-run: {summary['exit_reason']}", file=sys.stderr, flush=True)
    raise SystemExit(summary["exit_code"])


if __name__ == "__main__":
    main()
