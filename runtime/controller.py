"""The controller owns the decision: observation -> inference request -> chunk execution -> safety filter.

``update(tick, positions, images=None)`` never waits on the model: it submits the newest observation (and a
camera model's frames) to the inference worker, takes whatever chunks have finished (discarding non-finite
ones, and with a ``ChunkCheck`` clamping each into the ranges and dropping one that jumps), asks the executor for this tick's action, soft-starts and clamps it. With no action for a tick the
last command holds; after ``stall_timeout_s`` without one, ``SafetyStop``. With a ``CameraGate`` the frames
are its newest fresh ones; a tick whose frames are not all fresh submits nothing and holds (the wait for a
valid action restarts when the cameras are fresh again; the gate stops a camera stale for too long). With a
``HealthGuard`` every command keeps a derated joint near its present position, and the step cap shrinks.
Commands are full robot-joint vectors (user units); joints the model does not drive hold their starting pose.
A goal schedule's goal goes into the observation's ``.goal`` features, or for a model that sees its goal
(``show_goal``), into the simulated scene each time it changes.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from actsac.ensemble import ChunkExecutor, TemporalEnsembler
from .cameras import CameraGate
from .inference import InferenceWorker
from .loop import TickTime
from .observation import GoalSchedule, ObservationBuilder
from .safety import ChunkCheck, CommandFilter, SafetyStop, SoftStart, chunk_is_finite

LATENCY_WINDOW = 10  # chunk mode sizes its request lead on the worst of the last few latencies


class Controller:
    def __init__(self, *, executor: TemporalEnsembler | ChunkExecutor, worker: InferenceWorker,
                 observations: ObservationBuilder, goals: GoalSchedule | None, driven: list[int],
                 command_filter: CommandFilter, period_s: float, ramp_s: float, stall_timeout_s: float,
                 initial_latency_s: float = 0.0, cameras: CameraGate | None = None,
                 goal_index: list[int] | None = None, show_goal: Callable[[np.ndarray], object] | None = None,
                 health=None, chunk_check: ChunkCheck | None = None):
        self.executor = executor
        self.worker = worker
        self.observations = observations
        self.goals = goals
        self.driven = np.asarray(driven)  # robot-joint index of each model action dim
        self.filter = command_filter
        self.period_s = period_s
        self.ramp_ticks = int(round(ramp_s / period_s))
        self.stall_ticks = max(1, int(math.ceil(stall_timeout_s / period_s)))
        self.chunk_mode = isinstance(executor, ChunkExecutor)
        self.latencies_s: list[float] = []
        self._recent_latency = deque([initial_latency_s], maxlen=LATENCY_WINDOW)
        self.soft_start: SoftStart | None = None
        self.last_command: np.ndarray | None = None
        self._last_action_tick: int | None = None
        self._first_tick: int | None = None
        self._newest_chunk_tick: int | None = None
        self.chunks_received = 0
        self.nan_chunks = 0
        self.inference_errors = 0
        self.hold_ticks = 0
        self.goal_results: list[dict] = []
        self.cameras = cameras
        self.camera_hold_ticks = 0
        self._camera_hold_tick: int | None = None
        self._submitted_frames: dict[int, dict] = {}  # tick -> the gate's facts of the frames submitted then
        self.goal_index = observations.goal_index if goal_index is None else list(goal_index)
        self.show_goal = show_goal
        self.health = health  # runtime/health.py HealthGuard, or None
        self.chunk_check = chunk_check
        self._tick_latency_s: float | None = None
        self._segment: tuple[int, np.ndarray, float] | None = None  # (segment, goal, last error)

    @property
    def lead_ticks(self) -> int:
        """Request lead in chunk mode: ceil(latency / period) + 1 ticks before the plan runs out."""
        return int(math.ceil(max(self._recent_latency) / self.period_s)) + 1

    def update(self, tick: TickTime, positions: np.ndarray,
               images: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
        t = tick.index
        if self._first_tick is None:
            self._first_tick = t
            self.last_command = positions.copy()
            self.soft_start = SoftStart(positions[self.driven], self.ramp_ticks)
        goal = self._goal(t, positions)
        camera_info = None
        if self.cameras is not None:
            images, camera_info = self.cameras.take()
        received, frames_used = self._take_results()
        info = {"chunks_in": received, "ramping": False, "clamped": False, "cameras": camera_info,
                "frames_used": frames_used,
                "chunk_age": None if self._newest_chunk_tick is None else t - self._newest_chunk_tick}
        if self.cameras is not None and images is None:  # a camera is not fresh: nothing to the model, hold
            self.hold_ticks += 1
            self.camera_hold_ticks += 1
            self._camera_hold_tick = t
            command = self._derate(self.last_command, positions, t)
            info.update(hold=True, camera_hold=True, goal=goal, position=positions, command=command,
                        latency_s=self._tick_latency_s, frames_used=None)  # nothing written from new frames
            return command, info
        observation, frames = self.observations.inputs(positions, goal, images)
        if not self.chunk_mode or (self.executor.needs_chunk(t, self.lead_ticks) and not self.worker.busy):
            self.worker.submit(observation, t, frames)
            if camera_info is not None:
                self._submitted_frames[t] = camera_info
        target = self.executor.action_at(t)
        if self.chunk_check is not None and self.chunk_check.holding:
            target = None  # the last chunks all jumped: hold until a smooth one comes
        info["hold"] = target is None
        if target is None:
            self.hold_ticks += 1
            waited_from = max(x for x in (self._last_action_tick, self._camera_hold_tick, self._first_tick)
                              if x is not None)
            since = t - waited_from
            if since >= self.stall_ticks:
                what = "no valid action" if self._last_action_tick is not None else "no first action"
                if self.chunk_check is not None and self.chunk_check.holding:
                    what += (f" ({self.chunk_check.in_a_row} chunks in a row jumped, the last one: "
                             f"{self.chunk_check.last_jump})")
                raise SafetyStop(f"inference stalled: {what} for {since * self.period_s:.2f} s "
                                 f"(stall timeout {self.stall_ticks * self.period_s:.2f} s)")
            command = self._derate(self.last_command, positions, t)
        else:
            self._last_action_tick = t
            blended, info["ramping"] = self.soft_start.apply(target, t)
            step_scale = 1.0 if self.health is None else self.health.step_scale
            safe, info["clamped"] = self.filter.apply(blended, self.last_command[self.driven], step_scale)
            command = self.last_command.copy()
            command[self.driven] = safe
            command = self._derate(command, positions, t)
        self.last_command = command
        info.update(goal=goal, position=positions, command=command, latency_s=self._tick_latency_s)
        if self.health is not None:
            info["derated"] = self.health.derated
        return command, info

    def _derate(self, command: np.ndarray, positions: np.ndarray, t: int) -> np.ndarray:
        """The command with each derated joint kept near its present position (no guard: unchanged)."""
        if self.health is None:
            return command
        return self.health.limit(command, positions, (t - self._first_tick) * self.period_s)

    def _take_results(self) -> tuple[int, dict[str, float] | None]:
        """(chunks taken, capture times of the frames the newest of them was computed from)."""
        received, frames_used = 0, None
        self._tick_latency_s = None
        for result in self.worker.poll():
            self._tick_latency_s = result.latency_s
            self.latencies_s.append(result.latency_s)
            self._recent_latency.append(result.latency_s)
            if result.error is not None:
                self.inference_errors += 1
                continue
            if not chunk_is_finite(result.chunk) or (result.judged is not None and not chunk_is_finite(result.judged)):
                self.nan_chunks += 1
                continue
            chunk = result.chunk if self.chunk_check is None else self.chunk_check.check(result.chunk, result.judged)
            if chunk is None:
                continue
            self.executor.add_chunk(chunk, result.start_tick)
            self._newest_chunk_tick = result.start_tick
            self.chunks_received += 1
            received += 1
            facts = self._frames_of(result.start_tick)
            if facts is not None:
                self.cameras.fed(facts)
                frames_used = {name: f["capture_s"] for name, f in facts.items()}
        return received, frames_used

    def _frames_of(self, tick: int) -> dict | None:
        """The frames submitted at ``tick``; older submissions were replaced before they ran: forgotten."""
        for old in [k for k in self._submitted_frames if k < tick]:
            del self._submitted_frames[old]
        return self._submitted_frames.pop(tick, None)

    def _goal(self, t: int, positions: np.ndarray) -> np.ndarray | None:
        """The goal for this tick; tracks each goal segment's final error for the report."""
        if self.goals is None:
            return None
        segment, goal = self.goals.segment((t - self._first_tick) * self.period_s)
        if self._segment is not None and self._segment[0] != segment:
            self._close_segment(complete=True)
        if self.show_goal is not None and (self._segment is None or self._segment[0] != segment):
            self.show_goal(goal)
        error = float(np.max(np.abs(positions[self.goal_index] - goal)))
        self._segment = (segment, goal, error)
        return goal

    def _close_segment(self, complete: bool) -> None:
        """``complete``: the goal was held its whole time (a cycled goal cut short by the run's end is not)."""
        segment, goal, error = self._segment
        self.goal_results.append({"segment": segment, "goal_index": segment % len(self.goals.goals),
                                  "goal": [float(v) for v in goal], "final_error": error, "complete": complete})

    def finish(self) -> list[dict]:
        """Close the current goal segment; the per-goal results (success is judged by the caller)."""
        if self._segment is not None:
            self._close_segment(complete=self.goals.hold_s is None)
            self._segment = None
        return self.goal_results

    @property
    def dropped_steps(self) -> int:
        return self.executor.dropped_steps
