"""Motor health while a policy runs: temperature, effort and voltage read on a schedule, judged against limits.

Two parts, as the loop's read -> update -> write split asks:

- ``HealthPoller`` (I/O, the loop's ``monitor`` step after the goal write): reads one health group
  (``drivers/health.py``) of every motor when that group is due (each group ``health_hz`` times a second)
  and only when the read fits in what is left of the tick, judged on the slowest of its recent reads, so a
  health read never pushes a tick's position read and goal write past its deadline.
- ``HealthGuard`` (decisions, no I/O): warn -> derate -> safety stop, per motor, with limits from
  ``HealthLimits`` (the motor model's datasheet figures, the robot file's ``[health]`` table, the command
  line). A derated joint's goal is kept within a small band of its present position, so a position servo
  (effort about proportional to its position error) cannot squeeze: a gripper closing on an object backs off
  to where it is; while any joint is derated the step cap of every joint is halved. A stall (effort above
  the stall level with the goal away from the position for ``stall_s``) derates the joint until the policy
  stops pushing it; a temperature above the derate level derates it until it cools 5 degC below that.

Hardware error bits (overheat, overload, voltage) arrive in every status reply and stop the run in
``RobotIO``; they need no schedule.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np

from actsac.drivers.errors import BusError, MotorStatusError
from actsac.drivers.health import HEALTH_GROUPS, HEALTH_LEVELS, levels_in_order
from actsac.options import NON_NEGATIVE, option, parse_floats

from .errors import RunRefused
from .safety import POSITIVE, SafetyStop

TEMPERATURE_MARGINS_C = (15.0, 10.0, 5.0)  # warn / derate / stop this far below the model's temperature limit
TEMPERATURE_HYSTERESIS_C = 5.0  # a temperature warning or derate clears this far below its level
HOLD_BAND_FRACTION = 0.005  # a derated joint's goal stays within 0.5 % of its range of its present position
STALL_ERROR_FRACTION = 0.02  # a stall needs the goal this far (2 % of the range) from the position
DERATED_STEP_SCALE = 0.5  # the step cap of every joint while any joint is derated
COST_WINDOW = 8  # a group's read cost is judged on the slowest of its last reads
COST_MARGIN = 1.25  # ... times this, plus the tick's safety margin
TICK_MARGIN_FRACTION = 0.1  # a health read must end this fraction of the period before the next tick
BLIND_S = 2.0  # a group unread this long for lack of time is warned about (once)


@dataclass
class HealthSettings:
    """The ``actsac-run`` options of the "health" group (the robot file's ``[health]`` table sets the same
    limits per robot or per motor; an option overrides both)."""

    health_hz: float = option(5.0, "how often each health group (temperature, effort, voltage) of every motor is "
                                   "read, Hz, in the time a tick leaves after its goal write (0: no health reads)",
                              NON_NEGATIVE)
    temperature_c: list[float] | None = option(
        None, "WARN,DERATE,STOP temperatures of every motor, degC (default: the motor model's limit minus "
              "15, 10 and 5: 55,60,65 on an STS3215)", type=parse_floats, metavar="W,D,S")
    effort_pct: list[float] | None = option(
        None, "WARN,STALL effort of every motor, %% of its stall torque / current (default 80,40): above WARN a "
              "warning; above STALL with the goal away from the position for --stall-s, the joint is derated",
        type=parse_floats, metavar="W,S")
    stall_s: float | None = option(None, "how long a stall lasts before the joint is derated, s (default 0.5)",
                                   POSITIVE)
    voltage_drop_pct: list[float] | None = option(
        None, "WARN,STOP drop of a motor's voltage below its reading at start, %% (default 10,20)",
        type=parse_floats, metavar="W,S")


@dataclass(frozen=True)
class HealthLimits:
    """One motor's limits (degC, % of stall effort, s, % below the voltage at start)."""

    temperature_c: tuple[float, float, float]
    effort_pct: tuple[float, float] = (80.0, 40.0)  # a protected STS3215 gripper peaks at 50 % (Max_Torque_Limit 500)
    stall_s: float = 0.5
    voltage_drop_pct: tuple[float, float] = (10.0, 20.0)

    @classmethod
    def for_model(cls, model) -> "HealthLimits":
        """The datasheet default: warn / derate / stop 15 / 10 / 5 degC below the model's temperature limit."""
        limit = model.ratings.temperature_limit_c
        return cls(tuple(limit - m for m in TEMPERATURE_MARGINS_C))

    def updated(self, values: Mapping, label: Callable[[str], str]) -> "HealthLimits":
        """These limits with ``values`` (the options', a robot file's) applied; RunRefused names ``label(name)``."""
        changes = {}
        for name, value in values.items():
            if value is None:
                continue
            count, order = HEALTH_LEVELS[name]
            if count is None:
                changes[name] = float(value)
                continue
            levels = tuple(float(v) for v in value)
            if not levels_in_order(levels, count, order):
                raise RunRefused(f"{label(name)}: expected {count} {order} numbers, got {list(value)}")
            changes[name] = levels
        return replace(self, **changes)


def motor_limits(spec, settings: HealthSettings) -> dict[str, HealthLimits]:
    """Each motor's limits: its model's defaults, then the robot file's ``[health]`` (robot-wide, then the
    motor's own table), then the command line's options."""
    from actsac.drivers.tables import motor_model

    options = {"temperature_c": settings.temperature_c, "effort_pct": settings.effort_pct,
               "stall_s": settings.stall_s, "voltage_drop_pct": settings.voltage_drop_pct}
    robot_file = spec.health or {}
    out = {}
    for motor in spec.motors:
        limits = HealthLimits.for_model(motor_model(motor.model))
        for table in ("", motor.name):  # robot-wide, then the motor's own
            limits = limits.updated(robot_file.get(table, {}),
                                    lambda n, t=table: f"robot '{spec.name}': [health{'.' + t if t else ''}] {n}")
        out[motor.name] = limits.updated(options, lambda n: "--" + n.replace("_", "-"))
    return out


@dataclass
class _MotorState:
    peak_temperature_c: float = -math.inf
    peak_effort_pct: float = 0.0
    min_voltage_v: float = math.inf
    baseline_voltage_v: float | None = None
    seen: dict = field(default_factory=lambda: {g: 0 for g in HEALTH_GROUPS})
    warned: set = field(default_factory=set)
    derate: set = field(default_factory=set)  # reasons: "stall", "temperature"
    stall_since_s: float | None = None
    derated_since_s: float | None = None
    derated_s: float = 0.0  # derate periods that ended


class HealthGuard:
    """Judges readings of the robot's motors (``motors``, in the robot's joint order) against ``limits``."""

    def __init__(self, motors: list[str], limits: Mapping[str, HealthLimits], span: np.ndarray,
                 log: Callable[[str], None] = print):
        self.motors = list(motors)
        self.limits = dict(limits)
        self.span = np.asarray(span, dtype=np.float64)  # each joint's calibrated range, user units
        self.band = HOLD_BAND_FRACTION * self.span
        self.index = {m: i for i, m in enumerate(self.motors)}
        self.log = log
        self.state = {m: _MotorState() for m in self.motors}
        self.events: list[dict] = []
        self.last: dict[str, dict[str, float]] = {g: {} for g in HEALTH_GROUPS}
        self._positions: np.ndarray | None = None
        self._commands: np.ndarray | None = None
        self._tick_s: float | None = None

    # ------------------------------------------------------------------ readings
    def observe(self, group: str, values: Mapping[str, float], t_s: float) -> None:
        """One group's readings at ``t_s`` (run time); raises SafetyStop at a stop level."""
        self.last[group] = dict(values)
        for motor, value in values.items():
            st, lim = self.state[motor], self.limits[motor]
            st.seen[group] += 1
            if group == "temperature":
                st.peak_temperature_c = max(st.peak_temperature_c, value)
                self._temperature(motor, value, lim, t_s)
            elif group == "effort":
                st.peak_effort_pct = max(st.peak_effort_pct, abs(value))
                self._effort(motor, value, lim, t_s)
            elif group == "voltage":
                st.min_voltage_v = min(st.min_voltage_v, value)
                self._voltage(motor, value, lim, t_s)

    def _temperature(self, motor: str, value: float, lim: HealthLimits, t_s: float) -> None:
        warn, derate, stop = lim.temperature_c
        if value >= stop:
            self._event(t_s, motor, "stop", "temperature", value, stop, "degC")
            raise SafetyStop(f"motor {motor} at {value:.0f} degC (stop limit {stop:.0f} degC)")
        st = self.state[motor]
        if value >= derate and "temperature" not in st.derate:
            self._derate(motor, "temperature", t_s, value, derate, "degC")
        elif value < derate - TEMPERATURE_HYSTERESIS_C and "temperature" in st.derate:
            self._release(motor, "temperature", t_s, value, "degC")
        self._warn_once(motor, "temperature", value >= warn, value < warn - TEMPERATURE_HYSTERESIS_C,
                        t_s, value, warn, "degC")

    def _effort(self, motor: str, value: float, lim: HealthLimits, t_s: float) -> None:
        warn, stall = lim.effort_pct
        st = self.state[motor]
        self._warn_once(motor, "effort", abs(value) >= warn, abs(value) < 0.8 * warn, t_s, abs(value), warn, "%")
        i = self.index[motor]
        pushing = self._error(i) > STALL_ERROR_FRACTION * self.span[i]
        if abs(value) >= stall and pushing:
            st.stall_since_s = t_s if st.stall_since_s is None else st.stall_since_s
            if t_s - st.stall_since_s >= lim.stall_s and "stall" not in st.derate:
                self._derate(motor, "stall", t_s, abs(value), stall, "%")
        else:
            st.stall_since_s = None

    def _voltage(self, motor: str, value: float, lim: HealthLimits, t_s: float) -> None:
        st = self.state[motor]
        if st.baseline_voltage_v is None:
            st.baseline_voltage_v = value
            return
        drop = 100.0 * (1.0 - value / st.baseline_voltage_v) if st.baseline_voltage_v > 0 else 0.0
        warn, stop = lim.voltage_drop_pct
        if drop >= stop:
            self._event(t_s, motor, "stop", "voltage", value, None, "V")
            raise SafetyStop(f"motor {motor} supply at {value:.1f} V, {drop:.0f} % below its "
                             f"{st.baseline_voltage_v:.1f} V at start (stop at {stop:g} %)")
        self._warn_once(motor, "voltage", drop >= warn, drop < 0.5 * warn, t_s, value, None, "V",
                        f"{drop:.0f} % below its {st.baseline_voltage_v:.1f} V at start")

    # ------------------------------------------------------------------ commands
    @property
    def derated(self) -> list[str]:
        return [m for m in self.motors if self.state[m].derate]

    @property
    def step_scale(self) -> float:
        return DERATED_STEP_SCALE if any(st.derate for st in self.state.values()) else 1.0

    def limit(self, command: np.ndarray, positions: np.ndarray, t_s: float) -> np.ndarray:
        """This tick's full-robot command with each derated joint's goal kept within its hold band of its
        present position; a stall ends once the policy's goal for the joint is back within the band."""
        self._tick_s = t_s
        out = np.array(command, dtype=np.float64)
        for motor in self.derated:
            i, st = self.index[motor], self.state[motor]
            if "stall" in st.derate and abs(command[i] - positions[i]) <= self.band[i]:
                self._release(motor, "stall", t_s, float(command[i]), "")
            if st.derate:
                out[i] = np.clip(command[i], positions[i] - self.band[i], positions[i] + self.band[i])
        self._positions, self._commands = np.asarray(positions, np.float64), out
        return out

    def _error(self, i: int) -> float:
        if self._positions is None or self._commands is None:
            return 0.0
        return float(abs(self._commands[i] - self._positions[i]))

    # ------------------------------------------------------------------ events
    def _derate(self, motor, reason, t_s, value, level, unit) -> None:
        st = self.state[motor]
        if not st.derate:
            st.derated_since_s = t_s
        st.derate.add(reason)
        self._event(t_s, motor, "derate", reason, value, level, unit)

    def _release(self, motor, reason, t_s, value, unit) -> None:
        st = self.state[motor]
        st.derate.discard(reason)
        if not st.derate and st.derated_since_s is not None:
            st.derated_s += max(0.0, t_s - st.derated_since_s)
            st.derated_since_s = None
        self._event(t_s, motor, "release", reason, value, None, unit)

    def _warn_once(self, motor, kind, above: bool, cleared: bool, t_s, value, level, unit, note="") -> None:
        warned = self.state[motor].warned
        if above and kind not in warned:
            warned.add(kind)
            self._event(t_s, motor, "warn", kind, value, level, unit, note)
        elif cleared:
            warned.discard(kind)

    def _event(self, t_s, motor, level, kind, value, limit, unit, note="") -> None:
        event = {"t_s": round(t_s, 3), "motor": motor, "level": level, "kind": kind,
                 "value": round(float(value), 2), "limit": limit, "unit": unit}
        self.events.append(event)
        if level == "stop":
            return  # the stop's reason is the run's exit reason
        what = {"derate": "derated (goal held near its position, step caps halved)",
                "release": "no longer derated", "warn": "warning"}[level]
        limit_text = f" (limit {limit:g} {unit})" if limit is not None else ""
        detail = note or f"{value:.1f} {unit}{limit_text}".strip()
        self.log(f"actsac-run: health: {motor} {kind} {what}: {detail} at t {t_s:.1f} s")

    def summary(self, run_s: float) -> dict:
        """Per motor: peak temperature / effort, lowest voltage, how often each group was seen (Hz), time
        derated; and every event."""
        motors = {}
        now = run_s if self._tick_s is None else self._tick_s
        for m, st in self.state.items():
            ongoing = 0.0 if st.derated_since_s is None else max(0.0, now - st.derated_since_s)
            motors[m] = {"peak_temperature_c": None if st.peak_temperature_c == -math.inf else st.peak_temperature_c,
                         "peak_effort_pct": round(st.peak_effort_pct, 1),
                         "min_voltage_v": None if st.min_voltage_v == math.inf else st.min_voltage_v,
                         "seen_hz": {g: round(n / run_s, 2) if run_s > 0 else None for g, n in st.seen.items()},
                         "derated_s": round(st.derated_s + ongoing, 2)}
        return {"motors": motors, "events": list(self.events)}


class HealthPoller:
    """Reads the due health group after a tick's goal write, when it fits before the next tick."""

    def __init__(self, robot, guard: HealthGuard, health_hz: float, period_s: float, clock):
        self.robot, self.guard, self.clock = robot, guard, clock
        self.interval_s = 1.0 / health_hz
        self.period_s = period_s
        self.start_s = clock.now()  # until the loop starts (the baseline reads)
        self.last_read_s = {g: -math.inf for g in HEALTH_GROUPS}
        self.costs_s = {g: deque(maxlen=COST_WINDOW) for g in HEALTH_GROUPS}
        self.durations_s: dict[str, list[float]] = {g: [] for g in HEALTH_GROUPS}
        self.skipped = 0
        self.read_errors = 0
        self.ticks = 0
        self.blind_warned = False

    def baseline(self) -> None:
        """Read every group once before torque is on: the voltage at start, and each read's cost."""
        for group in HEALTH_GROUPS:
            self._read(group, self.clock.now())

    def monitor(self, tick) -> dict:
        """The loop's fourth step: one due group, if it fits; returns the tick's health facts."""
        if self.ticks == 0:  # the loop's start: event times are run times
            self.start_s = tick.scheduled_s - tick.index * self.period_s
        self.ticks += 1
        now = self.clock.now()
        due = [g for g in HEALTH_GROUPS if now - self.last_read_s[g] >= self.interval_s]
        if not due:
            return {}
        group = min(due, key=lambda g: self.last_read_s[g])
        deadline = tick.scheduled_s + self.period_s
        cost = max(self.costs_s[group], default=0.0) * COST_MARGIN
        if now + cost > deadline - TICK_MARGIN_FRACTION * self.period_s:
            self.skipped += 1
            if not self.blind_warned and now - self.last_read_s[group] > BLIND_S:
                self.blind_warned = True
                self.guard.log(f"actsac-run: warning: health: no {group} read for {now - self.last_read_s[group]:.1f} "
                               f"s: a read ({cost * 1e3:.1f} ms) does not fit in what the ticks leave after their "
                               f"write, so the motors are not watched; lower --fps")
            return {"health_skipped": group}
        values = self._read(group, now)
        return {} if values is None else {"health": {group: values}}

    def _read(self, group: str, now: float) -> dict[str, float] | None:
        self.last_read_s[group] = now
        try:
            values = self.robot.read_health(group)
        except MotorStatusError as exc:
            raise SafetyStop(hardware_error_message(exc)) from None
        except BusError:
            self.read_errors += 1
            return None
        took = self.clock.now() - now
        self.costs_s[group].append(took)
        self.durations_s[group].append(took)
        self.guard.observe(group, values, now - self.start_s)
        return values

    def summary(self, run_s: float) -> dict:
        reads = {g: {"count": len(d),
                     "p50_ms": None if not d else round(float(np.percentile(d, 50)) * 1e3, 3),
                     "p99_ms": None if not d else round(float(np.percentile(d, 99)) * 1e3, 3)}
                 for g, d in self.durations_s.items()}
        return {"health_hz": round(1.0 / self.interval_s, 3), "reads": reads, "skipped": self.skipped,
                "read_errors": self.read_errors, **self.guard.summary(run_s)}


def hardware_error_message(exc: MotorStatusError) -> str:
    """A status reply's error bits, as the reason a run stops."""
    motors = ", ".join(exc.motors) or "a motor"
    where = f" (port {exc.port})" if exc.port else ""
    return f"hardware error: {motors} reports {', '.join(exc.errors) or 'an error'}{where}: the servo protects itself"
