"""The chunk buffers against direct implementations of their definitions."""

import numpy as np
import pytest

from actsac.ensemble import ChunkExecutor, TemporalEnsembler


def act_reference(chunks: np.ndarray, coeff: float) -> np.ndarray:
    """ACT's original formula: a table of every chunk's prediction for every tick, then at tick t the
    populated predictions, oldest first, weighted exp(-coeff * i) normalised to sum 1."""
    n_ticks, horizon, action_dim = chunks.shape
    table = np.zeros((n_ticks, n_ticks + horizon, action_dim))
    populated = np.zeros((n_ticks, n_ticks + horizon), dtype=bool)
    out = []
    for t in range(n_ticks):
        table[t, t:t + horizon] = chunks[t]
        populated[t, t:t + horizon] = True
        actions = table[populated[:, t], t]
        weights = np.exp(-coeff * np.arange(len(actions)))
        weights = weights / weights.sum()
        out.append((actions * weights[:, None]).sum(axis=0))
    return np.array(out)


def async_reference(arrivals, coeff, horizon, ticks):
    """Direct form for asynchronous arrival: at tick t, every chunk that arrived by t (arrival tick <= t)
    and covers t contributes, oldest (earliest start) first."""
    out = []
    for t in ticks:
        covering = [c[t - s] for s, c, arrived in arrivals if arrived <= t and s <= t < s + horizon]
        if not covering:
            out.append(None)
            continue
        w = np.exp(-coeff * np.arange(len(covering)))
        out.append((np.array(covering) * w[:, None]).sum(0) / w.sum())
    return out


@pytest.mark.parametrize("coeff", [0.0, 0.01, 0.5, -0.1])
@pytest.mark.parametrize("horizon,action_dim", [(1, 3), (5, 2), (20, 6)])
def test_every_tick_form_matches_act_formula(coeff, horizon, action_dim):
    rng = np.random.default_rng(horizon * 100 + action_dim)
    chunks = rng.normal(size=(3 * horizon + 7, horizon, action_dim))
    ens = TemporalEnsembler(coeff, horizon)
    got = np.array([ens.update(c) for c in chunks])
    np.testing.assert_allclose(got, act_reference(chunks, coeff), rtol=1e-12, atol=1e-12)
    assert ens.dropped_steps == 0


@pytest.mark.parametrize("seed", range(5))
def test_asynchronous_arrival_matches_direct_form(seed):
    rng = np.random.default_rng(seed)
    horizon, action_dim, coeff = 8, 3, 0.2
    ens = TemporalEnsembler(coeff, horizon)
    arrivals, start, tick = [], 0, 0
    pending = []  # (arrival tick, start tick, chunk)
    results = []
    for tick in range(60):
        if rng.random() < 0.4:  # a request from this tick's observation, delivered 0..4 ticks later
            pending.append((tick + int(rng.integers(0, 5)), tick, rng.normal(size=(horizon, action_dim))))
        # deliver in start order once arrived (one worker: results never overtake each other)
        pending.sort(key=lambda p: p[1])
        while pending and pending[0][0] <= tick:
            arrived, start, chunk = pending.pop(0)
            ens.add_chunk(chunk, start)
            arrivals.append((start, chunk, tick))
        results.append(ens.action_at(tick))
    expected = async_reference(arrivals, coeff, horizon, range(60))
    for got, want in zip(results, expected):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_stale_steps_are_dropped_and_counted():
    ens = TemporalEnsembler(0.01, 4)
    assert ens.action_at(10) is None  # nothing yet: ticks up to 10 are served
    chunk = np.arange(8.0).reshape(4, 2)
    ens.add_chunk(chunk, start_tick=8)  # steps for 8, 9, 10 are in the past
    assert ens.dropped_steps == 3
    np.testing.assert_array_equal(ens.action_at(11), chunk[3])
    assert ens.action_at(12) is None
    ens.add_chunk(chunk, start_tick=8)  # entirely in the past
    assert ens.dropped_steps == 7


def test_chunk_ahead_of_served_tick_and_regressing_start():
    ens = TemporalEnsembler(0.0, 3)
    ens.add_chunk(np.ones((3, 1)), start_tick=5)
    ens.add_chunk(2 * np.ones((3, 1)), start_tick=9)  # beyond the first chunk's rows: buffer grows
    assert ens.action_at(4) is None
    np.testing.assert_array_equal(ens.action_at(7), [1.0])
    assert ens.action_at(8) is None
    np.testing.assert_array_equal(ens.action_at(10), [2.0])
    with pytest.raises(ValueError, match="arrived after"):
        ens.add_chunk(np.ones((3, 1)), start_tick=6)
    with pytest.raises(ValueError, match="expected"):
        ens.add_chunk(np.ones((2, 1)), start_tick=11)
    ens.reset()
    assert ens.action_at(0) is None and ens.dropped_steps == 0


def test_chunk_executor_runs_k_steps_open_loop_then_the_next():
    ex = ChunkExecutor(n_action_steps=3, chunk_size=5)
    a = np.arange(5.0)[:, None]
    b = 100 + np.arange(5.0)[:, None]
    assert ex.needs_chunk(0, lead_ticks=1)
    ex.add_chunk(a, start_tick=0)
    assert [ex.action_at(t)[0] for t in range(2)] == [0.0, 1.0]
    assert ex.needs_chunk(1, lead_ticks=2) and not ex.needs_chunk(0, lead_ticks=2)
    ex.add_chunk(b, start_tick=1)  # requested at tick 1, arrives before a's window ends: waits
    assert ex.action_at(2)[0] == 2.0  # a is never cut short
    assert ex.action_at(3)[0] == 102.0  # b takes over at tick 3 (its steps for ticks 1, 2 dropped)
    assert ex.dropped_steps == 2
    assert ex.action_at(4) is None  # b's window [1, 4) ended: nothing planned
    assert ex.plan_end() == 4 and ex.needs_chunk(4, lead_ticks=0)


def test_chunk_executor_late_and_superseded_chunks():
    ex = ChunkExecutor(n_action_steps=4)
    ex.add_chunk(np.zeros((4, 2)), start_tick=0)
    ex.add_chunk(np.ones((4, 2)), start_tick=1)  # waiting, then superseded by a newer one
    ex.add_chunk(2 * np.ones((4, 2)), start_tick=2)
    assert ex.dropped_steps == 4
    assert ex.action_at(10) is None  # the chunk for tick 2 takes over late: its whole window is gone
    assert ex.dropped_steps == 8
    with pytest.raises(ValueError):
        ChunkExecutor(5, chunk_size=4)
    with pytest.raises(ValueError):
        ex.add_chunk(np.zeros((3, 2)), start_tick=11)


def test_chunk_executor_drops_steps_already_served():
    ex = ChunkExecutor(n_action_steps=4)
    assert ex.action_at(5) is None
    chunk = np.arange(4.0)[:, None]
    ex.add_chunk(chunk, start_tick=3)  # computed from tick 3, arrives after tick 5 was served
    assert ex.dropped_steps == 3
    assert ex.action_at(6)[0] == 3.0
    assert ex.action_at(7) is None


def test_coefficients_whose_weights_would_overflow_are_refused():
    TemporalEnsembler(-66.0, 10)  # exp(66 * 9) is still a float
    for coeff in (-1000.0, 1000.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be finite and within"):
            TemporalEnsembler(coeff, 10)
