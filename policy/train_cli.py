"""`actsac-train`: train an ACT-SAC (or MLP) actor on a built-in task and write model.pt for actsac-export.

Every option is a field of ``TrainConfig`` (actsac.policy.train); its help text is the field's help.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from actsac._cli import fail, require_training_side
from actsac.files import output_problem
from actsac.options import add_options, from_args


def build_parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    parser = argparse.ArgumentParser(
        prog="actsac-train",
        description="Train an actor with SAC + behaviour cloning in a chunked action space (Q-chunking critic) "
                    "on a built-in task. Writes the checkpoint atomically, with a metrics CSV and a learning-curve "
                    "PNG next to it (model.metrics.csv, model.curve.png). Ctrl-C stops early and still writes the "
                    "best evaluated actor so far (before the first evaluation: the last update's actor, evaluated "
                    "once; before the first update: nothing).")
    add_options(parser, TrainConfig)
    return parser


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def check_out(out: Path, demos: str | None) -> None:
    """The checkpoint can be written where asked: refused now rather than after the training."""
    if not out.is_dir():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--out {out}: cannot create directory {out.parent} ({exc.strerror})")
    problem = output_problem(out, {"the demonstrations (--demos)": demos})
    if problem:
        fail(f"--out {out}: {problem}", 2)


def main(argv=None) -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop like Ctrl-C: past the start, the checkpoint is written
    require_training_side("actsac-train", ("torch", "tqdm", "matplotlib"))  # before torch is imported
    try:
        run(build_parser().parse_args(argv))
    except KeyboardInterrupt:  # outside the update loop, which turns Ctrl-C into a checkpoint
        fail("interrupted before a checkpoint was written", 130)


def run(args: argparse.Namespace) -> None:
    from .config import ConfigError
    from .demos import DemoError
    from .train import TrainConfig, TrainingError, side_paths, train

    config = from_args(TrainConfig, args)
    try:
        config.validate()
    except ConfigError as exc:
        fail(str(exc), 2)
    check_out(Path(config.out), config.demos)
    try:
        result = train(config, progress=sys.stderr.isatty(), log=lambda line: print(line, file=sys.stderr, flush=True))
    except (DemoError, ConfigError, FileNotFoundError, TrainingError) as exc:
        fail(str(exc).splitlines()[0])
    except OSError as exc:  # writing the checkpoint or its side files
        fail(f"--out {config.out}: not written ({exc.strerror or exc})")
    csv_path, png_path = side_paths(result.checkpoint)
    best = result.best["metrics"]
    state = "interrupted, " if result.interrupted else ""
    print(f"{result.checkpoint}: {type(result.actor).__name__}, {result.actor.num_parameters():,} parameters; "
          f"{state}saved update {result.best['step']}: success {best['eval/success_rate']:.2f}, "
          f"return {best['eval/return']:.1f}; trained in {result.wall_s:.1f} s")
    print(f"metrics: {csv_path}  curve: {png_path}")
    if result.interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
