"""Shared helpers of the runtime tests: test models, and runs on the simulator that can never hang."""

import threading

import pytest

from actsac.runtime.config import RunConfig
from actsac.runtime.session import run
from actsac.runtime.safety import SafetySettings

from .models import reach_model

REACH_TASK = {"name": "test-reach", "goals": [[30.0, -20.0, 10.0, 0.0, 0.0, 80.0], [-30.0, 20.0, -10.0, 10.0, 0.0, 20.0]],
              "goal_hold_s": 1.0, "success_tolerance": 2.0}


def run_bounded(limit_s: float = 30.0, **config):
    """``run`` on the simulator with a watchdog that stops it after ``limit_s``; returns (summary, log lines)."""
    stop = threading.Event()
    timer = threading.Timer(limit_s, stop.set)
    timer.start()
    lines = []
    safety = config.pop("safety", SafetySettings(stop_hold_s=0.1))
    sim = config.pop("sim", None)
    try:
        summary = run(RunConfig(safety=safety, **config), stop=stop, log=lines.append, sim=sim)
    finally:
        timer.cancel()
    assert "watchdog" not in summary["exit_reason"]
    return summary, lines


@pytest.fixture(scope="session")
def reach_onnx(tmp_path_factory):
    return reach_model(tmp_path_factory.mktemp("models") / "reach.onnx", gain=3.0, task=REACH_TASK)
