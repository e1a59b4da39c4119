"""Checks of what a user asks for, made before torque is on: a goal the joints cannot reach is refused; a rate the
bus or the model cannot keep, a goal the policy never trained for and a stochastic policy whose noise the step
cap will clamp away are warned about in one line each (the run goes on: the user may know better)."""

from __future__ import annotations

import numpy as np

from .errors import RunRefused

RATE_RATIO = 1.5  # --fps this far from the model's control_hz (either way) is warned about
BUS_SHARE = 0.8  # a bus read taking this share of the period leaves no time for the rest of the tick
CLAMPED_NOISE = 1.0  # the stochastic spread per tick against the step cap (median over joints)


def check_goal(goal: list[float], joints: list[str], low: np.ndarray, high: np.ndarray, units: list[str],
               task: dict | None) -> list[str]:
    """Refuse a ``--goal`` value outside its joint's calibrated range [low, high] (RunRefused naming the joint);
    return warnings for values outside the range of the task's training goals."""
    goal = np.asarray(goal, dtype=np.float64)
    for joint, value, lo, hi, unit in zip(joints, goal, low, high, units):
        if not lo - 1e-9 <= value <= hi + 1e-9:
            raise RunRefused(f"--goal: {joint} {value:g} is outside its calibrated range {lo:g}..{hi:g} ({unit})")
    goals = np.asarray((task or {}).get("goals") or [], dtype=np.float64)
    if goals.ndim != 2 or goals.shape[1] != len(joints):
        return []
    trained_lo, trained_hi = goals.min(axis=0), goals.max(axis=0)
    outside = [f"{j} {v:g} (trained {lo:g}..{hi:g})" for j, v, lo, hi in zip(joints, goal, trained_lo, trained_hi)
               if not lo <= v <= hi]
    if not outside:
        return []
    return [f"--goal is outside the task's {len(goals)} training goals for {', '.join(outside)}: the policy may "
            f"not reach it"]


def rate_warnings(fps: float, control_hz: float, bus_read_s: float, inference_s: float, chunk_size: int,
                  exec_mode: str) -> list[str]:
    """What a measured bus read and warm-up inference say of ``fps``, and how far it is from the model's rate."""
    period_s, warnings = 1.0 / fps, []
    if not 1.0 / RATE_RATIO <= fps / control_hz <= RATE_RATIO:
        warnings.append(f"--fps {fps:g}: the model was trained at {control_hz:g} Hz; each chunk step is meant to "
                        f"last {1e3 / control_hz:.1f} ms, not {1e3 * period_s:.1f} ms")
    if bus_read_s >= BUS_SHARE * period_s:
        warnings.append(f"--fps {fps:g}: a bus read took {bus_read_s * 1e3:.1f} ms here, of a {period_s * 1e3:.1f} ms "
                        f"tick: expect deadline misses (at most about {BUS_SHARE / bus_read_s:.0f} Hz)")
    if exec_mode == "ensemble" and inference_s >= chunk_size * period_s:
        warnings.append(f"--fps {fps:g}: one inference takes {inference_s * 1e3:.0f} ms, longer than a chunk of "
                        f"{chunk_size} ticks ({chunk_size * period_s * 1e3:.0f} ms): chunks arrive stale and the "
                        f"robot holds between them")
    return warnings


def stochastic_warning(mean: np.ndarray, log_std: np.ndarray, half_range: np.ndarray,
                       max_step: np.ndarray) -> str | None:
    """--stochastic: the spread of tanh(mean + std * eps) in robot units (first step of the chunk) against the
    per-tick step cap; when it is larger, most sampled commands are clamped and the policy moves less."""
    mean, std = np.asarray(mean, np.float64)[0], np.exp(np.asarray(log_std, np.float64)[0])
    spread = std * (1.0 - np.tanh(mean) ** 2) * np.asarray(half_range, np.float64)
    ratio = float(np.median(spread / np.asarray(max_step, np.float64)))
    if ratio <= CLAMPED_NOISE:
        return None
    return (f"--stochastic: the policy's noise per tick is {ratio:.1f}x the step cap (median over the joints): most "
            f"commands will be clamped; drop --stochastic or raise --max-step")


def check_calibration(record: dict | None, robot, spec, safety, log, model_name: str) -> None:
    """The calibration the model was trained with against the robot's (``calibration/compare.py``): refused
    (RunRefused) above ``--calibration-tolerance-deg`` on any joint, a warning with
    ``--allow-calibration-mismatch``; a model that stores none is said to be unchecked."""
    from actsac.calibration.compare import describe, differences

    if record is None:
        log(f"actsac-run: {model_name} stores no training calibration: not compared with the robot's")
        return
    apart = [d for d in differences(record, robot.calibration, spec) if d["degrees"] > safety.calibration_tolerance_deg]
    if not apart:
        return
    what = (f"the model was trained with another calibration ({record.get('source', 'unknown source')}): "
            f"{'; '.join(describe(d) for d in apart)}")
    if safety.allow_calibration_mismatch:
        log(f"actsac-run: warning: {what}")
        return
    raise RunRefused(f"calibration: {what}; more than {safety.calibration_tolerance_deg:g} degrees: recalibrate the "
                     f"robot, re-record the data, or pass --allow-calibration-mismatch")
