"""`actsac-export model.pt` (or a LeRobot checkpoint directory with --robot): a checkpoint -> a verified,
self-contained ONNX file (and a TensorRT engine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from actsac._cli import fail, first_line, require_training_side
from actsac.onnx_runtime import ORT_THREADS

from .lerobot.reader import DEFAULT_FPS, UNITS, looks_like_lerobot
from .metadata import DEFAULT_OPSET, MAX_BATCH
from .verify import TOLERANCE, TRT_TOLERANCE


def batch_arg(text: str) -> int | None:
    if text == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive integer or 'dynamic'") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {MAX_BATCH}")
    return value


def cameras_summary(meta) -> str:
    """", cameras front 480x640, wrist 240x320 (uint8 HWC RGB)" for a camera model, "" for a state-only one."""
    if not meta.cameras:
        return ""
    cameras = ", ".join(f"{c['name']} {c['height']}x{c['width']}" for c in meta.cameras)
    return f", cameras {cameras} (uint8 HWC RGB)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actsac-export",
        description="Export an actsac checkpoint, or a LeRobot ACT / SAC checkpoint (a pretrained_model directory "
                    "with config.json and model.safetensors; --robot names its joints), to one self-contained "
                    "ONNX file (raw observation in robot units, and for a camera model one uint8 (B, H, W, 3) RGB "
                    "input per camera, image.<camera> -> action_mean, action_log_std, action; a LeRobot ACT, "
                    "which has no log-std, -> action) carrying the metadata the robot needs, and verify it "
                    "against PyTorch before writing it. LeRobot itself is not needed.",
        epilog=f"Verification: max abs error vs PyTorch on action_mean / action_log_std within {TOLERANCE['fp32']:g} "
               f"(fp32), {TOLERANCE['fp16']:g} (fp16) or {TOLERANCE['int8']:g} (int8); on action (robot units) within that times the largest "
               f"action half-range. TensorRT vs ONNX Runtime: {TRT_TOLERANCE['fp32']:g} / {TRT_TOLERANCE['fp16']:g}. "
               "Exit codes: 0 written and verified; 1 bad input or verification failed (nothing written); "
               "2 usage error, or --trt without TensorRT / a CUDA GPU.")
    parser.add_argument("checkpoint", type=Path,
                        help="model.pt written by actsac-train / save_checkpoint, or a LeRobot checkpoint: "
                             "outputs/train/<run>/checkpoints/last/pretrained_model (or the directory holding it)")
    parser.add_argument("-o", "--output", type=Path,
                        help="ONNX file to write (default: beside the checkpoint, same stem, .onnx; for a LeRobot "
                             "checkpoint pretrained_model/model.onnx)")
    lerobot = parser.add_argument_group("LeRobot checkpoints")
    lerobot.add_argument("--robot", metavar="ROBOT",
                         help="the robot the policy was trained on: so100, koch, upper_body or a robot TOML "
                              "(required: LeRobot's files do not name the joints; its state and action are the "
                              "robot's joints in group order)")
    lerobot.add_argument("--units", choices=UNITS, default="range",
                         help="range: the joints in the robot's own units (LeRobot's default, range_m100_100, "
                              "gripper range_0_100); degrees: recorded with use_degrees (the gripper stays 0..100)")
    lerobot.add_argument("--calibration", type=Path, metavar="FILE",
                         help="the LeRobot calibration file of the arm the data was recorded with; stored in the "
                              "export, so actsac-run refuses a robot calibrated differently (without it, not checked)")
    lerobot.add_argument("--fps", type=float, metavar="HZ",
                         help=f"the rate the policy was recorded at (default: the training config's env.fps, "
                              f"else {DEFAULT_FPS:g}); actsac-run's default --fps")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset version (default {DEFAULT_OPSET}; 17 up to what the installed onnx knows)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16", default="fp32",
                           help="fp16 graph with fp32 inputs / outputs (for TensorRT and GPUs; verified at a "
                                "looser tolerance)")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8",
                           help="int8 weights, dynamically quantised activations (for CPUs: about 3x faster "
                                "than fp32 for the default state-only actor; a camera model's convolutions stay "
                                "fp32; verified at a looser tolerance)")
    parser.add_argument("--trt", action="store_true",
                        help="also build a TensorRT engine (<output stem>.engine) and verify it against ONNX "
                             "Runtime; fp16 engine with --fp16")
    parser.add_argument("--batch", type=batch_arg, default=None, metavar="N|dynamic",
                        help=f"fixed batch size N, or 'dynamic' (1..{MAX_BATCH}; the default)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    require_training_side("actsac-export", ("torch", "onnx", "onnxscript", "onnxruntime"))
    try:
        run(args)
    except KeyboardInterrupt:  # atomic writes leave nothing behind
        fail("interrupted; nothing written", 130)


def default_output(checkpoint: Path, lerobot: bool) -> Path:
    if not lerobot:
        return checkpoint.with_suffix(".onnx")
    from .lerobot.reader import pretrained_model_dir

    return pretrained_model_dir(checkpoint) / "model.onnx"  # found by check_lerobot_options


def check_lerobot_options(args: argparse.Namespace, lerobot: bool) -> None:
    if args.robot and not args.checkpoint.exists():  # meant as a LeRobot directory
        fail(f"{args.checkpoint}: no such file or directory")
    if lerobot:
        from .lerobot.reader import LeRobotError, pretrained_model_dir

        try:
            pretrained_model_dir(args.checkpoint)
        except LeRobotError as exc:
            fail(str(exc))
    if lerobot and not args.robot:
        fail(f"{args.checkpoint}: a LeRobot checkpoint does not name its joints: pass --robot (so100, koch, "
             f"upper_body or a robot TOML)", 2)
    if not lerobot:
        given = [flag for flag, value in (("--robot", args.robot), ("--fps", args.fps),
                                          ("--units", args.units != "range" or None),
                                          ("--calibration", args.calibration)) if value]
        if given:
            fail(f"{given[0]} applies to LeRobot checkpoints (a directory); {args.checkpoint} is an actsac "
                 f"checkpoint, which knows its robot", 2)
    if args.fps is not None and not args.fps > 0:
        fail(f"--fps {args.fps:g}: must be positive", 2)


def load(args: argparse.Namespace, lerobot: bool):
    """The Checkpoint to export: actsac's model.pt, or a LeRobot directory read for --robot."""
    from actsac.policy import CheckpointError, load_checkpoint  # torch: imported only once the arguments are good

    if not lerobot:
        try:
            return load_checkpoint(args.checkpoint)
        except CheckpointError as exc:
            fail(str(exc))
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.robots import load_robot

    from .lerobot.convert import load_lerobot
    from .lerobot.reader import LeRobotError

    try:
        robot = load_robot(args.robot)
    except RobotSpecError as exc:
        fail(f"--robot: {exc}", 2)
    try:
        loaded = load_lerobot(args.checkpoint, robot, units=args.units, fps=args.fps)
    except LeRobotError as exc:
        fail(str(exc))
    source = loaded.extra["source"]
    joints = loaded.config.joint_names
    loaded.extra["calibration"] = lerobot_calibration(args.calibration, robot, joints)
    named = ", ".join(joints) if len(joints) <= 8 else f"{joints[0]} ... {joints[-1]}"
    print(f"LeRobot {source['policy'].upper()} ({source['layout']} layout) for robot '{robot.name}' "
          f"({len(joints)} joints: {named}, in {args.units}), {loaded.config.control_hz:g} Hz"
          f"{lerobot_execution_hint(source)}")
    return loaded


def lerobot_calibration(path: Path | None, robot, joints: list[str]) -> dict | None:
    """The export's record of the calibration the data was recorded with (--calibration), or None, said."""
    if path is None:
        print("no --calibration: the export stores no calibration, so actsac-run cannot tell a robot calibrated "
              "differently from the one the data was recorded with (pass its LeRobot calibration file)")
        return None
    from actsac.calibration import CalibrationError, load_calibration
    from actsac.calibration.compare import calibration_record

    try:
        calibration = load_calibration(path, robot)
    except CalibrationError as exc:
        fail(f"--calibration: {first_line(exc)}")
    return calibration_record(calibration, joints, path.name)


def lerobot_execution_hint(source: dict) -> str:
    """How LeRobot executed the chunks, as actsac-run's options (an ACT)."""
    coeff, steps = source.get("temporal_ensemble_coeff"), source.get("n_action_steps")
    if coeff is not None:
        return f"; LeRobot ensembled its chunks: actsac-run --exec ensemble --ensemble-coeff {coeff:g}"
    if steps is not None and source["policy"] == "act":
        return f"; LeRobot ran {steps} steps per chunk: actsac-run --exec chunk --n-action-steps {steps}"
    return ""


def run(args: argparse.Namespace) -> None:
    checkpoint: Path = args.checkpoint
    lerobot = looks_like_lerobot(checkpoint)
    check_lerobot_options(args, lerobot)
    out: Path = args.output or default_output(checkpoint, lerobot)
    import onnx  # here, not at the top: --help stays fast

    newest = onnx.defs.onnx_opset_version()
    if not 17 <= args.opset <= newest:
        fail(f"--opset {args.opset}: the exporter needs opset 17 or newer, and the installed onnx knows up to "
             f"{newest}", 2)
    if not out.parent.is_dir():
        fail(f"{out}: directory {out.parent} does not exist")
    if out.is_dir():
        fail(f"{out}: is a directory; give a file name with -o")
    if out.resolve() == checkpoint.resolve():
        fail(f"{out}: the output would overwrite the checkpoint; choose another name with -o")
    if args.trt and args.precision == "int8":
        fail("--trt builds fp32 or fp16 engines: drop --int8 (int8 is for ONNX Runtime on a CPU)", 2)
    if args.trt:
        from .tensorrt import missing_tensorrt_reason

        reason = missing_tensorrt_reason()
        if reason:
            fail(f"--trt: {reason}", 2)

    from .onnx_export import export_onnx
    from .verify import VerificationError

    loaded = load(args, lerobot)
    try:
        result = export_onnx(loaded, out, opset=args.opset, batch=args.batch, precision=args.precision)
    except VerificationError as exc:
        fail(f"{out}: verification failed, nothing written: {exc}")
    except Exception as exc:  # the exporter's own failures: one line, not its traceback
        fail(f"{checkpoint}: ONNX export failed: {first_line(exc)}")
    meta = result.metadata
    batch = "dynamic 1.." + str(MAX_BATCH) if args.batch is None else str(args.batch)
    print(f"parameters: {result.parameters:,}   file: {result.file_bytes / 1e6:.2f} MB   precision: {meta.precision}   "
          f"opset: {meta.opset}   batch: {batch}")
    print(f"ONNX Runtime latency at batch {result.latency_batch} (CPU, {ORT_THREADS} threads): "
          f"{result.latency.summary()}")
    print(f"wrote {out} (chunk {meta.chunk_size}, {meta.action_dim} joints in "
          f"{', '.join(g['name'] for g in meta.action_groups)}, observation {meta.observation_shape}"
          f"{cameras_summary(meta)})")
    if args.trt:
        from .tensorrt import export_engine

        try:
            engine = export_engine(out, meta, batch=args.batch)
        except VerificationError as exc:
            fail(f"{out.with_suffix('.engine')}: verification failed, engine not written: {exc}")
        except Exception as exc:  # TensorRTError, or TensorRT's / CUDA's own exceptions
            fail(f"{out.with_suffix('.engine')}: TensorRT build failed, engine not written: {first_line(exc)}")
        print(f"wrote {engine}")
