"""Command-line options declared once, as dataclass fields: help, argparse keywords and the check of the value.

    @dataclass
    class Config:
        fps: float | None = option(None, "control rate in Hz", POSITIVE)

``add_options(parser, Config)`` makes ``--fps`` from it (a nested dataclass field becomes an argument group),
``from_args(Config, args)`` builds the config back from the parsed namespace, and ``check_options(config)``
applies every field's check, raising ``OptionError("--fps: must be ... (got 0)")``. actsac-train and actsac-run
both declare their options this way. Import-light: the robot side uses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing


class OptionError(ValueError):
    """An option's value is out of its range; the message names the option."""


def option(default=None, help: str = "", valid=None, **argparse_kw):
    """A config field that is also a command-line option. ``valid`` is a (test, requirement) pair checked on
    the value (on each element of a tuple or list; None always passes). ``argparse_kw`` go to add_argument;
    ``flag="--name"`` replaces the flag made from the field name."""
    return dataclasses.field(default=default, metadata={"help": help, "valid": valid, "argparse": argparse_kw})


AT_LEAST_1 = (lambda v: v >= 1, "must be >= 1")
AT_LEAST_0 = (lambda v: v >= 0, "must be >= 0")
POSITIVE = (lambda v: math.isfinite(v) and v > 0, "must be a finite number > 0")
NON_NEGATIVE = (lambda v: math.isfinite(v) and v >= 0, "must be a finite number >= 0")
FRACTION = (lambda v: 0 < v <= 1, "must be in (0, 1]")
FINITE = (math.isfinite, "must be a finite number")


def parse_floats(text: str) -> list[float]:
    """``V1,V2,...`` -> finite floats (an argparse type)."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = [math.nan]
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of finite numbers")
    return values


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("argparse", {}).get("flag") or "--" + f.name.replace("_", "-")


def _field_type(f: dataclasses.Field, hints: dict):
    """The field's type, with ``X | None`` unwrapped to X."""
    hint = hints[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _is_option(f: dataclasses.Field) -> bool:
    return "help" in f.metadata


def add_options(parser: argparse.ArgumentParser, cls, group=None) -> None:
    """One option per ``option()`` field of ``cls``; a field whose type is a dataclass adds a group of its own."""
    target = group or parser
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = _field_type(f, hints)
        if dataclasses.is_dataclass(kind) and not _is_option(f):
            add_options(parser, kind, parser.add_argument_group(f.name.replace("_", " ")))
            continue
        if not _is_option(f):
            continue
        kwargs = dict(f.metadata["argparse"])
        if kwargs.pop("flag", None) and kind is not bool and "choices" not in kwargs:
            kwargs.setdefault("metavar", flag_of(f)[2:].upper().replace("-", "_"))
        default = f.default
        help_text = f.metadata["help"]
        if default is not None and not isinstance(default, bool) and "(default" not in help_text:
            help_text += f" (default {default})"
        kwargs.update(dest=f.name, default=default, help=help_text)
        if kind is bool:
            target.add_argument(flag_of(f), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if "type" not in kwargs and "action" not in kwargs:
            if typing.get_origin(kind) is tuple:  # e.g. tuple[int, ...]: one or more values
                kwargs.update(nargs="+", type=typing.get_args(kind)[0])
            else:
                kwargs["type"] = kind
        target.add_argument(flag_of(f), **kwargs)


def from_args(cls, args: argparse.Namespace):
    """The config ``add_options`` described, built from the parsed values (lists back to tuples)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        kind = _field_type(f, hints)
        if dataclasses.is_dataclass(kind) and not _is_option(f):
            values[f.name] = from_args(kind, args)
        elif _is_option(f) and hasattr(args, f.name):
            value = getattr(args, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) and typing.get_origin(kind) is tuple else value
    return cls(**values)


def check_options(config) -> None:
    """Apply every field's ``valid`` check (nested configs too); raise OptionError naming the first option."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not _is_option(f):
            check_options(value)
            continue
        valid = f.metadata.get("valid")
        if valid is None or value is None:
            continue
        test, requirement = valid
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else (value,)
        if not all(test(v) for v in items):
            raise OptionError(f"{flag_of(f)}: {requirement} (got {value})")
