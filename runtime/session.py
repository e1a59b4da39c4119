"""One run of a policy on a robot, as a lifecycle: check -> configure -> activate -> loop -> safe state -> report.

Every mistake is refused (``OptionError`` for an option out of range, ``RunRefused`` for the rest, one line
each) before torque is enabled. Once the loop runs, the way it ends decides the exit code; every path ends
in the robot's safe stop (hold the present pose for ``stop_hold_s``, then torque off, then close).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable

from actsac._cli import first_line
from actsac.drivers.errors import BusError, CameraError
from actsac.drivers.protection import changes_text, read_protection, unchecked, unsafe, write_protection
from actsac.drivers.sim import SimOptions

from .backends import make_infer, open_backend, resolve_model, warm_up
from .config import RunConfig
from .controller import Controller
from .errors import RunRefused
from .cameras import CameraGate
from .health import HealthGuard, HealthPoller, motor_limits
from .hardware import (load_run_calibration, open_robot, parse_camera_overrides, robot_ports, robot_spec,
                       scene_shows_goals)
from .inference import InferenceWorker
from .loop import ControlLoop, RealClock
from .observation import GoalSchedule, ObservationBuilder, check_model_against_robot, observation_names
from .realtime import realtime_priority
from .recorder import RunRecorder
from .report import RunStats, format_table, summarize, write_summary
from .robot_io import RobotIO
from .safety import ChunkCheck, CommandFilter, SafetyStop
from .sanity import check_calibration, check_goal, rate_warnings, stochastic_warning
from .signals import stop_on_signals
from .status import StatusLine

EXIT_OK = 0  # the run ended as asked (--duration reached)
EXIT_USER_ERROR = 1  # refused before torque was enabled (bad model, robot, port, calibration...)
EXIT_SAFETY_STOP = 3  # a safety condition stopped the run (stalled inference, bus failures...)
EXIT_ERROR = 4  # an unexpected error during the run
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


def run(cfg: RunConfig, stop: threading.Event | None = None, log: Callable[[str], None] = print,
        sim: SimOptions | None = None) -> dict:
    """Run to the end; returns the summary (``exit_code`` in it). ``sim`` sets the simulator up when
    ``cfg.port`` is None. Raises OptionError or RunRefused before torque is on. ``cfg.status`` None: the
    live status line is on when stdout is a terminal."""
    cfg.validate()
    stop = stop or threading.Event()
    spec = robot_spec(cfg.robot)
    if cfg.port is None:
        log(f"actsac-run: no --port given: running on the simulated {spec.name} "
            f"({len(spec.buses)} bus{'es' if len(spec.buses) > 1 else ''}: {', '.join(b.name for b in spec.buses)})")
    model_path, metadata = resolve_model(cfg.model, spec)
    check_model_against_robot(metadata, spec, model_path.name)
    camera_sources = parse_camera_overrides(cfg.camera)
    names = observation_names(metadata)
    joints = [m.name for m in spec.motors]
    goal_joints = ObservationBuilder(names, joints).goal_joints
    scene_goals = cfg.port is None and not goal_joints and scene_shows_goals(metadata, spec, camera_sources)
    if scene_goals:  # the model sees its goal: the simulated scene shows the task's goals
        goal_joints = list(metadata.joint_names)
    goals = GoalSchedule.from_task(metadata.task, len(goal_joints), cfg.goal, model_path.name)
    fps = float(cfg.fps or metadata.control_hz)
    if not fps > 0:
        raise RunRefused(f"--fps {fps}: must be positive")
    executor = cfg.executor(metadata.chunk_size)
    health_limits = motor_limits(spec, cfg.health) if cfg.health.health_hz > 0 else None
    ports = robot_ports(spec, cfg.port)
    calibration = load_run_calibration(cfg.calibration, spec, real_port=ports is not None)
    cfg.check_outputs(model_path)
    model = open_backend(cfg.backend, model_path, cfg.threads, metadata)
    infer = make_infer(model, metadata, cfg.stochastic, cfg.seed)
    kind = metadata.origin if metadata.source else metadata.actor  # "lerobot act" for an imported policy
    log(f"actsac-run: {model_path.name} ({kind}, chunk {metadata.chunk_size}, "
        f"{metadata.action_dim} joints) on {spec.name} at {fps:g} Hz, {cfg.exec_mode} mode, {cfg.backend} backend")
    with contextlib.ExitStack() as stack:
        refused = stack.enter_context(realtime_priority(cfg.realtime))
        if refused:
            log(f"actsac-run: running at normal priority: {refused}")
        robot = stack.enter_context(open_robot(spec, ports, calibration, sim=sim, seed=cfg.seed,
                                               cameras=metadata.cameras, camera_sources=camera_sources))
        check_calibration(metadata.calibration, robot, spec, cfg.safety, log, model_path.name)
        if cfg.goal is not None and goal_joints:  # refused before torque, against the calibrated ranges
            low, high = robot.joint_limits(goal_joints)
            units = [spec.motor(j).norm_mode for j in goal_joints]
            for warning in check_goal(cfg.goal, goal_joints, low, high, units, metadata.task):
                log(f"actsac-run: warning: {warning}")
        live = sys.stdout.isatty() if cfg.status is None else cfg.status
        session = _Session(cfg, robot, metadata, names, goals, executor, infer, fps, log,
                           goal_joints=goal_joints, scene_goals=scene_goals, model=model, health_limits=health_limits,
                           status=StatusLine(sys.stdout, fps) if live else None)
        summary = session.run(stop)
        summary["realtime"] = cfg.realtime and not refused
    log(format_table(summary))
    if cfg.summary_json is not None:
        write_summary(cfg.summary_json, summary)
    return summary


class _Session:
    """The hardware part of a run, split out so every path through it ends in the robot's safe stop."""

    def __init__(self, cfg: RunConfig, robot, metadata, names, goals, executor, infer, fps: float, log, *,
                 goal_joints: list[str], scene_goals: bool, model=None, status: StatusLine | None = None,
                 health_limits: dict | None = None):
        self.cfg, self.robot, self.metadata, self.model = cfg, robot, metadata, model
        self.status = status
        self.log = log if status is None else self._log_below_status(log, status)
        self.goal_joints, self.scene_goals = goal_joints, scene_goals
        self.names, self.goals, self.executor, self.infer = names, goals, executor, infer
        self.fps, self.period_s = fps, 1.0 / fps
        self.joints = [m.name for m in robot.spec.motors]
        self.clock = RealClock()
        self.io = RobotIO(robot, self.joints, self.clock, obs_max_age_s=cfg.safety.obs_max_age_s,
                          max_failures=cfg.safety.max_bus_failures)
        self.controller = self.worker = self.loop = self.recorder = self.cameras = self.health = None
        self.health_limits = health_limits
        self.protection: dict | None = None
        self.stats = RunStats()

    @staticmethod
    def _log_below_status(log, status: StatusLine):
        """A log line erases the live line first (it is redrawn at its next refresh), never writes over it."""
        def write(line: str) -> None:
            status.clear()
            log(line)
        return write

    def run(self, stop: threading.Event) -> dict:
        try:
            self.robot.connect()
        except (BusError, CameraError) as exc:
            raise RunRefused(str(exc)) from None
        for camera in self.robot.cameras.values():
            self.log(f"actsac-run: {camera.describe()}")
        with stop_on_signals(stop) as signals:  # until the summary is made: a second Ctrl-C must not cut it short
            reason, code, safe = self._lifecycle(stop, signals)
            return self._report(reason, code, safe)

    def _lifecycle(self, stop: threading.Event, signals) -> tuple[str, int, str]:
        """Configure, prepare, activate, loop; every way out goes through the robot's safe stop."""
        reason, code = "completed", EXIT_OK
        try:
            changed = self.robot.configure(self.period_s)
            if changed:
                self.log(f"actsac-run: calibration written to the motors: {', '.join(sorted(changed))}")
            self.protection = self._gripper_protection()
            self._prepare()
            if stop.is_set():  # asked to stop while preparing: never power the motors
                ended = "stopped"
            else:
                self.robot.activate()
                if self.status is not None:
                    self.status.start()
                ended = self.loop.run(stop, duration_s=self.cfg.duration_s)
            if ended == "stopped":
                reason, code = f"interrupted ({signals[-1] if signals else 'stop requested'})", EXIT_INTERRUPTED
        except SafetyStop as exc:
            reason, code = f"safety stop: {exc}", EXIT_SAFETY_STOP
        except KeyboardInterrupt:
            reason, code = "interrupted (SIGINT)", EXIT_INTERRUPTED
        except BusError as exc:
            reason, code = f"error: bus: {exc}", EXIT_ERROR
        except RunRefused:
            raise
        except Exception as exc:  # noqa: BLE001 (reported in one line, the robot still reaches the safe state)
            reason, code = f"error: {type(exc).__name__}: {first_line(exc)}", EXIT_ERROR
        finally:
            if self.status is not None:
                self.status.stop()
            safe = self.robot.safe_stop(self.cfg.safety.stop_hold_s)
            if "TORQUE OFF FAILED" in safe:
                self.log(f"actsac-run: WARNING: could not turn torque off: {safe}")
            if self.worker is not None:
                self.worker.close()
        return reason, code, safe

    def _prepare(self) -> None:
        """Warm the model up on the present pose, then build the controller, the recorder and the loop."""
        t0 = time.perf_counter()
        start = self.io.read_now()
        bus_read_s = time.perf_counter() - t0
        goal = None if self.goals is None else self.goals.segment(0.0)[1]
        if self.scene_goals:
            self.robot.show_goal(goal)
        history = self.metadata.history
        frames = {name: frame.image for name, frame in self.robot.read_frames().items()} or None
        observation = ObservationBuilder(self.names, self.joints, history).build(start, goal)
        latency = warm_up(self.infer, observation, images=frames)
        driven = self.metadata.joint_names
        command_filter = CommandFilter.for_robot(self.robot, driven, self.cfg.safety.max_step)
        warnings = rate_warnings(self.fps, self.metadata.control_hz, bus_read_s, latency, self.metadata.chunk_size,
                                 self.cfg.exec_mode)
        if self.cfg.stochastic and self.model is not None:
            out = self.model(observation, ["action_mean", "action_log_std"], frames)
            warnings.append(stochastic_warning(out["action_mean"], out["action_log_std"],
                                               self.metadata.action_scale, command_filter.max_step))
        for warning in filter(None, warnings):
            self.log(f"actsac-run: warning: {warning}")
        if self.robot.cameras:
            self.cameras = CameraGate(self.robot, self.metadata.camera_names,
                                      max_age_s=self._camera_max_age(), frozen_s=self.cfg.safety.camera_frozen_s,
                                      stall_timeout_s=self.cfg.safety.stall_timeout_s)
        guard = self._health_guard()
        self.worker = InferenceWorker(self.infer)
        self.controller = Controller(
            executor=self.executor, worker=self.worker,
            observations=ObservationBuilder(self.names, self.joints, history, self.metadata.camera_names),
            goals=self.goals, cameras=self.cameras, goal_index=[self.joints.index(j) for j in self.goal_joints],
            show_goal=self.robot.show_goal if self.scene_goals else None,
            driven=[self.joints.index(j) for j in driven],
            command_filter=command_filter,
            period_s=self.period_s, ramp_s=self.cfg.safety.ramp_s,
            stall_timeout_s=self.cfg.safety.stall_timeout_s, initial_latency_s=latency, health=guard,
            chunk_check=ChunkCheck.for_robot(self.robot, driven, self.metadata.control_hz or self.fps,
                                             self.cfg.safety.chunk_speed_factor,
                                             self.cfg.safety.chunk_hold_after))
        if self.cfg.record is not None:
            header = {"robot": self.robot.spec.name, "fps": self.fps, "exec": self.cfg.exec_mode,
                      "model_chunk_size": self.metadata.chunk_size, "backend": self.cfg.backend}
            self.recorder = RunRecorder(self.cfg.record, self.joints, header)
            self.recorder.attach_cameras(self.robot.cameras)
        self.loop = ControlLoop(self.io, self.controller, self.period_s, self.clock, on_tick=self._on_tick,
                                monitor=None if self.health is None else self.health.monitor)
        if self.status is not None:
            self.status.attach(self.loop, self.controller, self.io)

    def _gripper_protection(self) -> dict | None:
        """Read the grippers' protection registers (torque is off); refuse, write or warn about a gripper left
        at factory limits, as --gripper-protection says (default: check on a real port, write on the
        simulator). Returns what was read and written, for the summary."""
        mode = self.cfg.safety.gripper_protection or ("write" if self.cfg.port is None else "check")
        readings = read_protection(self.robot)
        if not readings:
            return None
        loose = unsafe(self.robot, readings)
        outcome = {"mode": mode, "read": readings, "written": {}}
        for motor, model in unchecked(self.robot).items():  # reported, never refused: nothing to judge it by
            limits = ", ".join(f"{register} {value}" for register, value in readings[motor].items()) or "none read"
            self.log(f"actsac-run: gripper {motor}: no known safe values for a {model}, not checked ({limits})")
        if not loose:
            return outcome
        text = "; ".join(f"{motor} {register} {value} (safe: {safe})" for motor, register, value, safe in loose)
        if mode == "check":
            raise RunRefused(f"gripper protection: {text}: a gripper at factory limits burns when it squeezes an "
                             f"object; pass --gripper-protection write to write the safe values, or "
                             f"--gripper-protection ignore to run as it is")
        if mode == "write":
            outcome["written"] = write_protection(self.robot, readings)
            self.log(f"actsac-run: gripper protection written: {changes_text(loose)}")
        else:
            self.log(f"actsac-run: warning: gripper at factory limits (--gripper-protection ignore): {text}")
        return outcome

    def _health_guard(self) -> HealthGuard | None:
        """The motor-health guard and its poller (``--health-hz 0``: none); a first read of every group now,
        before torque: each motor's voltage at start, and what a read costs."""
        if self.health_limits is None:
            return None
        low, high = self.robot.joint_limits(self.joints)
        guard = HealthGuard(self.joints, self.health_limits, high - low, log=self.log)
        self.health = HealthPoller(self.robot, guard, self.cfg.health.health_hz, self.period_s, self.clock)
        self.health.baseline()
        return guard

    def _camera_max_age(self) -> dict[str, float]:
        """--camera-max-age-s, else two frame periods of each camera."""
        if self.cfg.safety.camera_max_age_s is not None:
            return {name: self.cfg.safety.camera_max_age_s for name in self.robot.cameras}
        return {name: 2.0 / camera.fps for name, camera in self.robot.cameras.items()}

    def _on_tick(self, rec) -> None:
        if self.cameras is not None and rec.info.get("frames_used"):
            self.cameras.commanded(rec.info["frames_used"], time.monotonic())  # the goal write just happened
        self.stats.on_tick(rec)
        if self.recorder is not None:
            self.recorder.on_tick(rec)
        if self.status is not None:
            self.status.on_tick(rec)

    def _report(self, reason: str, code: int, safe: str) -> dict:
        try:
            summary = summarize(self.stats, fps_target=self.fps, scheduler=self.loop.scheduler if self.loop else None,
                                controller=self.controller, io=self.io, exit_reason=reason, exit_code=code,
                                safe_state=safe, goal_tolerance=(self.metadata.task or {}).get("success_tolerance"),
                                cameras=None if self.cameras is None else self.cameras.summary(),
                                health=None if self.health is None else self.health.summary(self.stats.ticks * self.period_s))
            if self.protection is not None:
                summary["gripper_protection"] = self.protection
            return summary
        finally:  # the log and the videos are closed whatever the summary does
            if self.recorder is not None:
                self.recorder.finish(self.log, exit_reason=reason, exit_code=code, safe_state=safe)
