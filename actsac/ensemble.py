"""Turning action chunks into one action per control tick (numpy only, shared with SACPolicy.select_action).

Both classes share one API, so the controller does not care which mode runs:

- ``add_chunk(chunk, start_tick)``: a chunk of H actions whose step 0 is for ``start_tick`` (the tick of the
  observation it was computed from). Steps for ticks already served are dropped and counted in
  ``dropped_steps``.
- ``action_at(tick)``: the action for ``tick`` (a new float64 array) or None when no chunk covers it. Asking
  for a tick marks every earlier tick and the tick itself as served.
- ``reset()``.

``TemporalEnsembler`` is ACT's temporal ensembling (Zhao et al. 2023): every chunk covering tick t contributes
with weight exp(-coeff * i), i = 0 the oldest. It keeps the online form (a weighted sum, a weight sum and a
count per future tick), so no chunk history is stored and one tick costs O(A).
``ChunkExecutor`` executes the first ``n_action_steps`` steps of each chunk open loop (Q-chunking).
"""

from __future__ import annotations

import math

import numpy as np


def _as_chunk(chunk, chunk_size: int, action_dim: int | None) -> np.ndarray:
    chunk = np.asarray(chunk, dtype=np.float64)
    if chunk.ndim != 2 or chunk.shape[0] != chunk_size:
        raise ValueError(f"chunk of shape {chunk.shape}: expected ({chunk_size}, action_dim)")
    if action_dim is not None and chunk.shape[1] != action_dim:
        raise ValueError(f"chunk of shape {chunk.shape}: expected action_dim {action_dim}")
    return chunk


MAX_EXPONENT = 600.0  # exp(600) ~ 4e260: the weighted sums of actions stay far below the float64 limit


class TemporalEnsembler:
    """ACT temporal ensembling, synchronous (``update``) or asynchronous (``add_chunk`` / ``action_at``).

    Weights count chunks in arrival order, which is their age order as long as start ticks never decrease
    (one inference worker delivers chunks in the order of the observations they came from); a chunk with an
    older start tick than the previous one is refused.
    """

    def __init__(self, coeff: float, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        # Weights reach exp(-coeff * (chunk_size - 1)) (that many chunks can cover one tick): keep it a float.
        limit = MAX_EXPONENT / max(1, chunk_size - 1)
        if not (math.isfinite(coeff) and abs(coeff) <= limit):
            raise ValueError(f"coeff must be finite and within +-{limit:.3g} for chunk size {chunk_size} "
                             f"(exp(-coeff * i) must not overflow), got {coeff}")
        self.coeff = float(coeff)
        self.chunk_size = int(chunk_size)
        self.reset()

    def reset(self) -> None:
        self._base = 0  # tick of row 0 of the accumulators
        self._served = None  # last tick handed out by action_at (None: nothing served yet)
        self._last_start = None
        self._sum = self._wsum = self._count = None  # allocated on the first chunk (action_dim unknown before)
        self._next_update_tick = 0
        self.dropped_steps = 0

    def update(self, chunk) -> np.ndarray:
        """Every-tick form: add the chunk computed at this tick and return this tick's action."""
        tick = self._next_update_tick
        self._next_update_tick += 1
        self.add_chunk(chunk, tick)
        return self.action_at(tick)

    def add_chunk(self, chunk, start_tick: int) -> None:
        start_tick = int(start_tick)
        if self._last_start is not None and start_tick < self._last_start:
            raise ValueError(f"chunk for tick {start_tick} arrived after one for tick {self._last_start}")
        chunk = _as_chunk(chunk, self.chunk_size, None if self._sum is None else self._sum.shape[1])
        if self._sum is None:
            self._allocate(chunk.shape[1], start_tick)
        self._last_start = start_tick
        first_live = self._base if self._served is None else max(self._base, self._served + 1)
        skip = max(0, first_live - start_tick)
        if skip >= self.chunk_size:
            self.dropped_steps += self.chunk_size
            return
        self.dropped_steps += skip
        rows = np.arange(start_tick + skip, start_tick + self.chunk_size) - self._base
        self._ensure_rows(int(rows[-1]) + 1)
        weights = np.exp(-self.coeff * self._count[rows])
        self._sum[rows] += weights[:, None] * chunk[skip:]
        self._wsum[rows] += weights
        self._count[rows] += 1

    def action_at(self, tick: int) -> np.ndarray | None:
        tick = int(tick)
        if self._sum is None or tick < self._base:
            self._mark_served(tick)
            return None
        self._advance(tick)
        self._mark_served(tick)
        if self._count[0] == 0:
            return None
        return self._sum[0] / self._wsum[0]

    # ------------------------------------------------------------------ accumulator bookkeeping
    def _mark_served(self, tick: int) -> None:
        self._served = tick if self._served is None else max(self._served, tick)

    def _allocate(self, action_dim: int, start_tick: int) -> None:
        n = self.chunk_size
        self._sum = np.zeros((n, action_dim))
        self._wsum = np.zeros(n)
        self._count = np.zeros(n, dtype=np.int64)
        self._base = start_tick if self._served is None else max(start_tick, self._served)

    def _ensure_rows(self, n_rows: int) -> None:
        """Grow the accumulators (rare: only when a chunk starts ahead of the served tick)."""
        extra = n_rows - self._sum.shape[0]
        if extra > 0:
            self._sum = np.concatenate([self._sum, np.zeros((extra, self._sum.shape[1]))])
            self._wsum = np.concatenate([self._wsum, np.zeros(extra)])
            self._count = np.concatenate([self._count, np.zeros(extra, dtype=np.int64)])

    def _advance(self, tick: int) -> None:
        """Move row 0 to ``tick``, forgetting the rows of earlier ticks (shift in place, zero the tail)."""
        shift = tick - self._base
        if shift <= 0:
            return
        n = self._sum.shape[0]
        if shift >= n:
            self._sum[:] = 0.0
            self._wsum[:] = 0.0
            self._count[:] = 0
        else:
            for a in (self._sum, self._wsum, self._count):
                a[: n - shift] = a[shift:]
                a[n - shift:] = 0
        self._base = tick


class ChunkExecutor:
    """Open-loop chunk execution: each chunk runs for the ticks [start, start + n_action_steps).

    A chunk that arrives while the current one still has steps to run waits for them (the current chunk is
    never cut short, as the Q-chunking critic assumes); it then takes over, its steps before the takeover
    tick dropped. A newer waiting chunk replaces an older waiting one.
    """

    def __init__(self, n_action_steps: int, chunk_size: int | None = None):
        if n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
        if chunk_size is not None and n_action_steps > chunk_size:
            raise ValueError(f"n_action_steps {n_action_steps} exceeds the chunk size {chunk_size}")
        self.n_action_steps = int(n_action_steps)
        self.chunk_size = chunk_size
        self.reset()

    def reset(self) -> None:
        self._current: tuple[int, np.ndarray] | None = None  # (start tick, chunk)
        self._waiting: tuple[int, np.ndarray] | None = None
        self._served = None
        self.dropped_steps = 0

    def _window_end(self, entry) -> int:
        start, chunk = entry
        return start + min(self.n_action_steps, chunk.shape[0])

    def add_chunk(self, chunk, start_tick: int) -> None:
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or (self.chunk_size is not None and chunk.shape[0] != self.chunk_size):
            raise ValueError(f"chunk of shape {chunk.shape}: expected ({self.chunk_size or 'H'}, action_dim)")
        if chunk.shape[0] < self.n_action_steps:
            raise ValueError(f"chunk of {chunk.shape[0]} steps is shorter than n_action_steps {self.n_action_steps}")
        if self._waiting is not None:  # superseded before it ever ran
            self.dropped_steps += self._window_end(self._waiting) - self._waiting[0]
        self._waiting = (int(start_tick), chunk)
        first_live = None if self._served is None else self._served + 1
        if self._current is None or (first_live is not None and first_live >= self._window_end(self._current)):
            self._take_over(first_live)

    def _take_over(self, tick: int | None) -> None:
        """The waiting chunk becomes current from ``tick`` on; its steps before that are dropped."""
        start = self._waiting[0]
        if tick is not None:
            self.dropped_steps += max(0, min(tick, self._window_end(self._waiting)) - start)
        self._current, self._waiting = self._waiting, None

    def action_at(self, tick: int) -> np.ndarray | None:
        tick = int(tick)
        if self._waiting is not None and (self._current is None or tick >= self._window_end(self._current)):
            self._take_over(max(tick, self._served + 1) if self._served is not None else tick)
        self._served = tick if self._served is None else max(self._served, tick)
        if self._current is None:
            return None
        start, chunk = self._current
        if start <= tick < self._window_end(self._current):
            return chunk[tick - start].copy()
        return None

    def plan_end(self) -> int | None:
        """First tick with no planned action (None when nothing is planned)."""
        entries = [e for e in (self._current, self._waiting) if e is not None]
        return max(self._window_end(e) for e in entries) if entries else None

    def needs_chunk(self, tick: int, lead_ticks: int) -> bool:
        """True when a chunk requested now (from this tick's observation) is needed to continue the plan:
        the plan runs out within ``lead_ticks`` ticks. The caller keeps at most one request in flight."""
        end = self.plan_end()
        return end is None or tick + lead_ticks >= end
