"""One run of a policy on a robot: check everything, connect, soft-start, loop, and always reach the safe state.

Every user mistake is refused (``UserError``, one line) before torque is enabled. Once the loop runs, the way
it ends decides the exit code; every path goes through ``_safe_state`` (hold the present pose for
``stop_hold_s``, then torque off, then close the ports).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from actsac._cli import UserError, first_line
from actsac.files import atomic_write, output_problem

from .backends import ORT_THREADS, make_infer, open_backend
from .controller import Controller
from .ensemble import ChunkExecutor, TemporalEnsembler
from .inference import InferenceWorker
from .loop import ControlLoop, RealClock
from .observation import GoalSchedule, ObservationBuilder, check_model_against_robot, observation_names
from .realtime import realtime_priority
from .recorder import RunRecorder
from .report import RunStats, format_table, goal_report, summarize
from .robot_io import RobotIO
from .safety import CommandFilter, SafetySettings, SafetyStop, joint_limits

EXIT_OK = 0  # the run ended as asked (--duration reached)
EXIT_USER_ERROR = 1  # refused before torque was enabled (bad model, robot, port, calibration...)
EXIT_SAFETY_STOP = 3  # a safety condition stopped the run (stalled inference, bus failures...)
EXIT_ERROR = 4  # an unexpected error during the run
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM
EXAMPLE_MODEL = Path(__file__).parent / "assets" / "so100_reach.onnx"
WARMUP_CALLS = 3
DEFAULT_STEP_FRACTION = 0.05  # max step per tick of a joint the robot file gives none for: 5 % of its range


@dataclass
class RunConfig:
    robot: str = "so100"
    port: str | None = None  # None: the simulator; "P" for a one-bus robot, "bus=P,bus2=P2" otherwise
    model: Path | None = None  # None: the example policy shipped in runtime/assets/
    fps: float | None = None  # None: the model's control_hz
    exec_mode: str = "ensemble"  # "ensemble" | "chunk"
    ensemble_coeff: float = 0.01
    n_action_steps: int | None = None  # chunk mode, default the chunk size
    backend: str = "ort"
    stochastic: bool = False
    seed: int = 0
    duration_s: float | None = None
    record: Path | None = None
    summary_json: Path | None = None
    goal: list[float] | None = None
    calibration: Path | None = None
    safety: SafetySettings = field(default_factory=SafetySettings)
    threads: int = ORT_THREADS
    sim_faults: object | None = None  # simulator fault injection (drivers.sim.Faults), for tests and benchmarks
    wire_time: bool = True  # the simulator emulates the bus's baud rate
    realtime: bool = False  # SCHED_FIFO for the control process (and what it starts), when permitted


def _load_robot(name: str):
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.robots import load_robot

    try:
        return load_robot(name)
    except RobotSpecError as exc:
        raise UserError(str(exc)) from None


def _load_metadata(cfg: RunConfig, spec) -> tuple[Path, object]:
    from actsac.export import MetadataError, read_metadata

    path = cfg.model
    if path is None:
        if not EXAMPLE_MODEL.is_file():
            raise UserError(f"no --model given and the example policy {EXAMPLE_MODEL} is not installed: pass --model")
        if spec.name != "so100":
            raise UserError(f"no --model given; the example policy drives the so100, not '{spec.name}': pass --model")
        path = EXAMPLE_MODEL
    try:
        return Path(path), read_metadata(path)
    except MetadataError as exc:
        raise UserError(str(exc)) from None


def _load_calibration(path: Path | None, spec, real_port: bool):
    """The calibration to apply, or None on the simulator without a file (its motors start calibrated).

    On a real port one is required: ``--calibration``, else the default file of ``actsac-calibrate``.
    """
    from actsac.calibration import (CalibrationError, default_calibration_path, load_calibration,
                                    missing_calibration_message)

    try:
        if path is None:
            if not real_port:
                return None
            path = default_calibration_path(spec.name)
            if not path.is_file():
                raise UserError("refusing to enable torque without a calibration: "
                                + missing_calibration_message(spec.name, path))
        return load_calibration(path, spec)
    except CalibrationError as exc:
        raise UserError(first_line(exc)) from None


def _executor(cfg: RunConfig, chunk_size: int):
    if cfg.exec_mode == "ensemble":
        try:
            return TemporalEnsembler(cfg.ensemble_coeff, chunk_size)
        except ValueError as exc:
            raise UserError(f"--ensemble-coeff {cfg.ensemble_coeff:g}: {exc}") from None
    if cfg.exec_mode == "chunk":
        k = cfg.n_action_steps or chunk_size
        if not 1 <= k <= chunk_size:
            raise UserError(f"--n-action-steps {k}: must be between 1 and the model's chunk size {chunk_size}")
        return ChunkExecutor(k, chunk_size)
    raise UserError(f"--exec {cfg.exec_mode}: one of ensemble, chunk")


def bus_timeout_s(period_s: float) -> float:
    """Per-try reply timeout (on top of the wire time), so a retried read still fits in a tick."""
    return min(0.02, max(0.003, 0.3 * period_s))


def tick_budget_s(period_s: float) -> float:
    """All tries of one bus operation inside the loop (connecting keeps the drivers' longer defaults)."""
    return 0.5 * period_s


def run(cfg: RunConfig, stop: threading.Event | None = None, log: Callable[[str], None] = print) -> dict:
    """Run to the end; returns the summary (``exit_code`` in it). Raises UserError before torque is on."""
    stop = stop or threading.Event()
    spec = _load_robot(cfg.robot)
    if cfg.port is None:
        log(f"actsac-run: no --port given: running on the simulated {spec.name} "
            f"({len(spec.buses)} bus{'es' if len(spec.buses) > 1 else ''}: {', '.join(b.name for b in spec.buses)})")
    model_path, metadata = _load_metadata(cfg, spec)
    check_model_against_robot(metadata, spec, model_path.name)
    robot_joints = [m.name for m in spec.motors]
    names = observation_names(metadata)
    probe = ObservationBuilder(names, robot_joints, metadata.history)
    goals = GoalSchedule.from_task(metadata.task, len(probe.goal_slots), cfg.goal, model_path.name)
    fps = float(cfg.fps or metadata.control_hz)
    if not fps > 0:
        raise UserError(f"--fps {fps}: must be positive")
    executor = _executor(cfg, metadata.chunk_size)
    calibration = _load_calibration(cfg.calibration, spec, real_port=cfg.port is not None)
    if cfg.record is not None:
        try:
            Path(cfg.record).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--record {cfg.record}: cannot create the directory ({exc.strerror})") from None
    if cfg.summary_json is not None:
        problem = output_problem(cfg.summary_json, {"--model": model_path, "--calibration": cfg.calibration})
        if problem:
            raise UserError(f"--summary-json {cfg.summary_json}: {problem}")
    model = open_backend(cfg.backend, model_path, cfg.threads)
    infer = make_infer(model, metadata, cfg.stochastic, cfg.seed)
    log(f"actsac-run: {model_path.name} ({metadata.actor}, chunk {metadata.chunk_size}, "
        f"{metadata.action_dim} joints) on {spec.name} at {fps:g} Hz, {cfg.exec_mode} mode, {cfg.backend} backend")
    with contextlib.ExitStack() as stack:
        refused = stack.enter_context(realtime_priority(cfg.realtime))
        if refused:
            log(f"actsac-run: running at normal priority: {refused}")
        if cfg.port is None:
            from actsac.drivers.sim import simulate

            ports = stack.enter_context(simulate(spec, wire_time=cfg.wire_time, faults=cfg.sim_faults, seed=cfg.seed))
        else:
            from actsac.drivers.errors import RobotSpecError
            from actsac.drivers.robots import parse_ports

            try:
                ports = parse_ports(cfg.port, spec)
            except RobotSpecError as exc:
                raise UserError(str(exc)) from None
        session = _Session(cfg, spec, ports, calibration, metadata, names, goals, executor, infer, fps, log)
        summary = session.run(stop)
        summary["realtime"] = cfg.realtime and not refused
    log(format_table(summary))
    if cfg.summary_json is not None:
        import json

        try:
            atomic_write(cfg.summary_json, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
        except OSError as exc:  # checked before the run; the file system may still change under it
            raise UserError(f"--summary-json {cfg.summary_json}: not written ({exc.strerror or exc})") from None
    return summary


class _Session:
    """The hardware part of a run, split out so every path through it ends in ``_safe_state``."""

    def __init__(self, cfg, spec, ports, calibration, metadata, names, goals, executor, infer, fps, log):
        self.cfg, self.spec, self.metadata, self.log = cfg, spec, metadata, log
        self.period_s = 1.0 / fps
        self.fps = fps
        self.clock = RealClock()
        self.names, self.goals, self.executor, self.infer = names, goals, executor, infer
        self.calibration = calibration
        from actsac.drivers.robot import Robot

        try:
            self.robot = Robot(spec, ports, calibration)  # the drivers' patient defaults while connecting
        except (ValueError, KeyError) as exc:
            raise UserError(str(exc)) from None
        bus = next(iter(self.robot.buses.values()))
        self._patient_timing = (bus.timeout_s, bus.budget_s)
        self.robot_joints = [m.name for m in spec.motors]
        self.io = RobotIO(self.robot, self.robot_joints, self.clock, obs_max_age_s=cfg.safety.obs_max_age_s,
                          max_failures=cfg.safety.max_bus_failures)
        self.controller = self.worker = self.loop = self.recorder = None
        self.stats = RunStats()
        self._signal = None

    def run(self, stop: threading.Event) -> dict:
        from actsac.drivers.errors import BusError

        try:
            self.robot.connect()
        except BusError as exc:
            self.robot.close()
            raise UserError(str(exc)) from None
        restore = self._install_signals(stop)  # until the summary is made: a second Ctrl-C must not cut it short
        try:
            return self._run_connected(stop)
        finally:
            restore()

    def _run_connected(self, stop: threading.Event) -> dict:
        """Calibrate, prepare, torque on, loop; every way out goes through ``_safe_state``."""
        from actsac.drivers.errors import BusError

        reason, code = "completed", EXIT_OK
        try:
            if self.calibration is not None:  # homing offsets and limits, written only where they differ
                from actsac.calibration import apply_to_robot

                changed = apply_to_robot(self.robot, self.calibration)
                if changed:
                    self.log(f"actsac-run: calibration written to the motors: {', '.join(sorted(changed))}")
            self._prepare()
            if stop.is_set():  # asked to stop while preparing: never power the motors
                ended = "stopped"
            else:
                self.robot.enable_torque()
                self._set_bus_timing(bus_timeout_s(self.period_s), tick_budget_s(self.period_s))
                ended = self.loop.run(stop, duration_s=self.cfg.duration_s)
            if ended == "stopped":
                reason, code = f"interrupted ({self._signal or 'stop requested'})", EXIT_INTERRUPTED
        except SafetyStop as exc:
            reason, code = f"safety stop: {exc}", EXIT_SAFETY_STOP
        except KeyboardInterrupt:
            reason, code = "interrupted (SIGINT)", EXIT_INTERRUPTED
        except BusError as exc:
            reason, code = f"error: bus: {exc}", EXIT_ERROR
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 (reported in one line, the robot still reaches the safe state)
            reason, code = f"error: {type(exc).__name__}: {first_line(exc)}", EXIT_ERROR
        finally:
            safe = self._safe_state()
            if self.worker is not None:
                self.worker.close()
        return self._finish(reason, code, safe)

    def _prepare(self) -> None:
        from actsac.drivers.tables import motor_model

        start = self.io.read_now()
        probe = ObservationBuilder(self.names, self.robot_joints, self.metadata.history)
        goal = None if self.goals is None else self.goals.segment(0.0)[1]
        observation = probe.build(start, goal)
        latency = 0.0
        for _ in range(WARMUP_CALLS):  # first calls allocate; also sizes the chunk-mode request lead
            t0 = time.perf_counter()
            self.infer(observation)
            latency = time.perf_counter() - t0
        driven = [self.robot_joints.index(j) for j in self.metadata.joint_names]
        motors = [self.spec.motor(j) for j in self.metadata.joint_names]
        resolutions = {m.name: motor_model(m.model).resolution for m in motors}
        low, high = joint_limits(motors, self.robot.calibration, resolutions)
        cap = self.cfg.safety.max_step
        per_joint = self.spec.max_step if cap is None else (cap if isinstance(cap, dict) else
                                                            {m.name: float(cap) for m in motors})
        steps = np.array([per_joint.get(m.name, DEFAULT_STEP_FRACTION * (hi - lo))
                          for m, lo, hi in zip(motors, low, high)])
        self.worker = InferenceWorker(self.infer)
        self.controller = Controller(
            executor=self.executor, worker=self.worker,
            observations=ObservationBuilder(self.names, self.robot_joints, self.metadata.history),
            goals=self.goals, driven=driven, command_filter=CommandFilter(low, high, steps),
            period_s=self.period_s, ramp_s=self.cfg.safety.ramp_s,
            stall_timeout_s=self.cfg.safety.stall_timeout_s, initial_latency_s=latency)
        if self.cfg.record is not None:
            header = {"robot": self.spec.name, "fps": self.fps, "exec": self.cfg.exec_mode,
                      "model_chunk_size": self.metadata.chunk_size, "backend": self.cfg.backend}
            self.recorder = RunRecorder(self.cfg.record, self.robot_joints, header)
        self.loop = ControlLoop(self.io, self.controller, self.period_s, self.clock, on_tick=self._on_tick)

    def _on_tick(self, rec) -> None:
        self.stats.on_tick(rec)
        if self.recorder is not None:
            latency = rec.info.get("latency_s")
            self.recorder.record(rec, None if latency is None else latency * 1e3)

    def _install_signals(self, stop: threading.Event):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum, _frame):
            self._signal = signal.Signals(signum).name
            stop.set()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]

    def _set_bus_timing(self, timeout_s: float, budget_s: float) -> None:
        """In the loop a bus operation must fit in a tick; outside it, the drivers' patient defaults apply."""
        for bus in self.robot.buses.values():
            bus.timeout_s, bus.budget_s = timeout_s, budget_s

    def _safe_state(self) -> str:
        """Hold the present pose for stop_hold_s, torque off, close. Returns what was reached, in words.
        Any failure (not only a BusError) is noted and passed over: torque off must always be tried."""
        self._set_bus_timing(*self._patient_timing)
        notes = []
        if self.robot.state == "active" and self.cfg.safety.stop_hold_s > 0:
            try:
                self.robot.write_goals(self.robot.read_positions())
                time.sleep(self.cfg.safety.stop_hold_s)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"hold failed ({exc})")
        try:
            self.robot.close()
            notes.append("torque off")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"TORQUE OFF FAILED: {exc}")
            self.log(f"actsac-run: WARNING: could not turn torque off: {exc}")
        return ", ".join(notes)

    def _finish(self, reason: str, code: int, safe: str) -> dict:
        c = self.controller
        summary = summarize(self.stats, fps_target=self.fps, scheduler=self.loop.scheduler if self.loop else None,
                            controller=c, io=self.io, latencies_s=c.latencies_s if c else [],
                            exit_reason=reason, exit_code=code)
        summary["safe_state"] = safe
        if c is not None and self.goals is not None:
            tolerance = (self.metadata.task or {}).get("success_tolerance")
            summary["goals"] = goal_report(c.finish(), tolerance)
        if self.recorder is not None:
            self.recorder.event(exit_reason=reason, exit_code=code, safe_state=safe)
            self.recorder.close()
            self.log(f"actsac-run: per-tick log {self.recorder.path}")
            try:
                plot = self.recorder.plot()
                if plot is not None:
                    self.log(f"actsac-run: plot {plot}")
            except Exception as exc:  # noqa: BLE001 (a plot must never hide the run's outcome)
                self.log(f"actsac-run: could not draw the plot: {first_line(exc)}")
        return summary
