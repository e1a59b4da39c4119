"""Raw ticks <-> user units for one motor: LeRobot's normalisation modes (REFERENCE.md section 9).

Pure functions over numpy arrays, no I/O. ``drive_mode`` 1 inverts the direction in every mode.

- ``range_m100_100``: (clamp(raw) - min) / (max - min) * 200 - 100
- ``range_0_100``:    (clamp(raw) - min) / (max - min) * 100
- ``degrees``:        (raw - mid) * 360 / (resolution - 1), mid = (min + max) / 2
- ``radians``:        (raw - mid) * 2 pi / (resolution - 1)
- ``ticks``:          raw, unchanged
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NORM_MODES = ("range_m100_100", "range_0_100", "degrees", "radians", "ticks")


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's entry of a LeRobot-format calibration file (ticks)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


def normalize(raw, cal: MotorCalibration, mode: str, resolution: int = 4096):
    """Raw ticks -> user units (float array or scalar)."""
    raw = np.asarray(raw, dtype=np.float64)
    lo, hi = cal.range_min, cal.range_max
    sign = -1.0 if cal.drive_mode else 1.0
    if mode in ("range_m100_100", "range_0_100"):
        fraction = (np.clip(raw, lo, hi) - lo) / (hi - lo)
        if mode == "range_m100_100":
            return sign * (fraction * 200.0 - 100.0)
        return 100.0 - fraction * 100.0 if cal.drive_mode else fraction * 100.0
    mid = (lo + hi) / 2.0
    if mode == "degrees":
        return sign * (raw - mid) * 360.0 / (resolution - 1)
    if mode == "radians":
        return sign * (raw - mid) * 2.0 * np.pi / (resolution - 1)
    if mode == "ticks":
        return raw
    raise ValueError(f"unknown normalisation mode '{mode}' (one of {', '.join(NORM_MODES)})")


def unnormalize(value, cal: MotorCalibration, mode: str, resolution: int = 4096):
    """User units -> raw ticks (rounded to int64, clamped to the calibrated range for the range modes)."""
    value = np.asarray(value, dtype=np.float64)
    lo, hi = cal.range_min, cal.range_max
    sign = -1.0 if cal.drive_mode else 1.0
    if mode == "range_m100_100":
        raw = (sign * value + 100.0) / 200.0 * (hi - lo) + lo
    elif mode == "range_0_100":
        fraction = (100.0 - value if cal.drive_mode else value) / 100.0
        raw = fraction * (hi - lo) + lo
    elif mode == "degrees":
        raw = sign * value * (resolution - 1) / 360.0 + (lo + hi) / 2.0
    elif mode == "radians":
        raw = sign * value * (resolution - 1) / (2.0 * np.pi) + (lo + hi) / 2.0
    elif mode == "ticks":
        raw = value
    else:
        raise ValueError(f"unknown normalisation mode '{mode}' (one of {', '.join(NORM_MODES)})")
    if mode.startswith("range_"):
        raw = np.clip(raw, lo, hi)
    return np.rint(raw).astype(np.int64)
