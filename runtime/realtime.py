"""Optional real-time scheduling for the control process (Linux SCHED_FIFO), the way ``chrt -f`` does it.

A fixed-rate loop on a busy computer is late whenever the kernel runs something else at its deadline; a
SCHED_FIFO thread preempts every normal process. Set before the simulator, the inference worker and the bus
threads start, the policy is inherited by all of them. It needs root, CAP_SYS_NICE or an rtprio limit
(``/etc/security/limits.conf``); without them the run goes on at normal priority and says so.
"""

from __future__ import annotations

import contextlib
import os
import threading

DEFAULT_PRIORITY = 10  # low among real-time priorities: above every normal process, below kernel threads


@contextlib.contextmanager
def realtime_priority(enabled: bool, priority: int = DEFAULT_PRIORITY):
    """Yield None when SCHED_FIFO was granted (or not asked for), else the reason it was not."""
    if not enabled:
        yield None
        return
    if not hasattr(os, "sched_setscheduler"):
        yield "SCHED_FIFO is not available on this platform"
        return
    previous = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        yield f"SCHED_FIFO refused ({exc.strerror}): needs root, CAP_SYS_NICE or an rtprio limit"
        return
    try:
        yield None
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, previous[0], previous[1])


NICEST = -20


def below_the_loop() -> None:
    """For the inference worker thread when the loop is real-time: back to normal scheduling, at the highest
    normal priority (nice -20) when permitted.

    Not real-time: a model computing most of the time would use up the kernel's real-time budget
    (sched_rt_runtime_us, 95 %) and get every real-time thread, the bus's included, throttled for tens of
    milliseconds. Nice -20: a normal process rarely preempts it in the middle of Python code holding the GIL,
    which the loop would then wait for.
    """
    if not hasattr(os, "sched_getscheduler") or os.sched_getscheduler(0) != os.SCHED_FIFO:
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICEST)
