"""`actsac-train`: train an ACT-SAC (or MLP) actor on a built-in task and write model.pt for actsac-export.

Every option is a field of ``TrainConfig`` (actsac.policy.train); its help text is the field's help.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import types
import typing
from pathlib import Path

from actsac._cli import fail
from actsac.files import output_problem


def _field_type(f: dataclasses.Field, hints: dict) -> type:
    """The field's type, with ``X | None`` unwrapped to X."""
    hint = hints[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def build_parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    parser = argparse.ArgumentParser(
        prog="actsac-train", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train an actor with SAC + behaviour cloning in a chunked action space (Q-chunking critic) "
                    "on a built-in task. Writes the checkpoint atomically, with a metrics CSV and a learning-curve "
                    "PNG next to it (model.metrics.csv, model.curve.png). Ctrl-C stops early and still writes the "
                    "best evaluated actor so far.")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        meta.pop("valid")  # TrainConfig.validate applies it
        kind = _field_type(f, hints)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
            continue
        kwargs = {"default": f.default, "help": meta.pop("help")}
        if typing.get_origin(kind) is tuple:  # e.g. tuple[int, ...]: one or more values
            kwargs.update(nargs="+", type=typing.get_args(kind)[0])
        else:
            kwargs["type"] = kind
        kwargs.update(meta)
        parser.add_argument(flag, **kwargs)
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
    try:
        run(build_parser().parse_args(argv))
    except KeyboardInterrupt:  # outside the update loop, which turns Ctrl-C into a checkpoint
        fail("interrupted before a checkpoint was written", 130)


def run(args: argparse.Namespace) -> None:
    from .config import ConfigError
    from .demos import DemoError
    from .train import TrainConfig, TrainingError, side_paths, train

    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()}
    config = TrainConfig(**values)
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
    best = result.best.get("metrics", {})
    state = "interrupted, " if result.interrupted else ""
    print(f"{result.checkpoint}: {type(result.actor).__name__}, {result.actor.num_parameters():,} parameters; "
          f"{state}saved update {result.best['step']}: success {best.get('eval/success_rate', float('nan')):.2f}, "
          f"return {best.get('eval/return', float('nan')):.1f}; trained in {result.wall_s:.1f} s")
    if result.metrics:
        print(f"metrics: {csv_path}  curve: {png_path}")
    if result.interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
