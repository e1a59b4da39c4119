"""The loop's timing on a fake clock: absolute deadlines, no drift, skipped periods instead of bursts."""

import threading

import numpy as np
import pytest

from actsac.runtime.loop import ControlLoop, RateScheduler, RealClock


class FakeClock:
    """Time moves only when the loop sleeps or a test says work took time."""

    def __init__(self, start_s: float = 100.0):
        self.t = start_s
        self.sleeps = []

    def now(self) -> float:
        return self.t

    def sleep_until(self, deadline_s: float) -> None:
        self.sleeps.append(deadline_s)
        self.t = max(self.t, deadline_s)

    def work(self, seconds: float) -> None:
        self.t += seconds


def test_deadlines_are_absolute_and_do_not_drift():
    clock = FakeClock()
    sched = RateScheduler(0.01, clock)
    starts = []
    for _ in range(1000):
        tick = sched.next_tick()
        starts.append(tick.scheduled_s)
        clock.work(0.0037)  # work that is not a multiple of the period
    assert np.allclose(np.diff(starts), 0.01)
    assert starts[-1] == pytest.approx(100.0 + 999 * 0.01, abs=1e-9)
    assert sched.deadline_misses == 0


def test_an_overrun_shorter_than_a_period_starts_late_without_skipping():
    clock = FakeClock()
    sched = RateScheduler(0.01, clock)
    sched.next_tick()
    clock.work(0.015)  # the next deadline passed half a period ago
    tick = sched.next_tick()
    assert tick.index == 1 and tick.jitter_s == pytest.approx(0.005) and tick.missed_periods == 0
    assert sched.deadline_misses == 0
    clock.work(0.001)
    assert sched.next_tick().index == 2  # back on the grid


def test_missed_periods_are_skipped_not_burst():
    clock = FakeClock()
    sched = RateScheduler(0.01, clock)
    sched.next_tick()
    clock.work(0.0355)  # ticks 1, 2, 3 are all in the past
    tick = sched.next_tick()
    assert tick.index == 3 and tick.missed_periods == 2
    assert tick.jitter_s == pytest.approx(0.0055)
    assert sched.deadline_misses == 1 and sched.skipped_periods == 2
    clock.work(0.001)
    nxt = sched.next_tick()
    assert nxt.index == 4 and nxt.jitter_s == pytest.approx(0.0)


class FakeIO:
    def __init__(self, clock, read_s, write_s):
        self.clock, self.read_s, self.write_s = clock, read_s, write_s
        self.written = []

    def read(self, tick):
        self.clock.work(self.read_s)
        return np.array([float(tick.index)]), {"bus_error": False}

    def write(self, command):
        self.clock.work(self.write_s)
        self.written.append(command)


class FakeController:
    def __init__(self, clock, update_s):
        self.clock, self.update_s = clock, update_s

    def update(self, tick, observation):
        self.clock.work(self.update_s)
        return observation * 2, {"hold": False}


def test_control_loop_reads_updates_writes_and_times_each_phase():
    clock = FakeClock()
    io = FakeIO(clock, 0.001, 0.0005)
    records = []
    loop = ControlLoop(io, FakeController(clock, 0.0002), 0.01, clock, on_tick=records.append)
    assert loop.run(threading.Event(), duration_s=0.5) == "completed"
    assert len(records) == 50 and [r.time.index for r in records] == list(range(50))
    assert [w[0] for w in io.written] == [2.0 * i for i in range(50)]
    r = records[7]
    assert (r.read_s, r.update_s, r.write_s) == pytest.approx((0.001, 0.0002, 0.0005))
    assert r.overhead_s == pytest.approx(0.0002)
    assert r.info == {"bus_error": False, "hold": False}


def test_control_loop_stops_on_the_event_and_on_max_ticks():
    clock = FakeClock()
    stop = threading.Event()
    loop = ControlLoop(FakeIO(clock, 0, 0), FakeController(clock, 0), 0.01, clock,
                       on_tick=lambda r: r.time.index == 4 and stop.set())
    assert loop.run(stop) == "stopped" and loop.ticks == 5
    loop = ControlLoop(FakeIO(clock, 0, 0), FakeController(clock, 0), 0.01, clock)
    assert loop.run(threading.Event(), max_ticks=3) == "completed" and loop.ticks == 3


def test_real_clock_wakes_close_to_the_deadline():
    clock = RealClock()
    late = []
    for _ in range(20):
        deadline = clock.now() + 0.002
        clock.sleep_until(deadline)
        late.append(clock.now() - deadline)
    assert min(late) >= 0.0  # never early; how late is measured by actsac-bench --loop, not asserted


def test_realtime_priority_is_granted_and_restored_or_refused_with_a_reason():
    import os

    from actsac.runtime.realtime import realtime_priority

    from actsac.runtime.realtime import below_the_loop

    def worker_priority():
        seen = []

        def body():
            below_the_loop()
            seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

        thread = threading.Thread(target=body)
        thread.start()
        thread.join(5)
        return seen[0]

    before = os.sched_getscheduler(0)
    with realtime_priority(True, priority=5) as refused:
        if refused is None:
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
            assert worker_priority() == (os.SCHED_OTHER, -20)  # inference: normal scheduling, nicest
        else:
            assert "SCHED_FIFO" in refused
    assert os.sched_getscheduler(0) == before
    with realtime_priority(False) as refused:
        assert refused is None and os.sched_getscheduler(0) == before
