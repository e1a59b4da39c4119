"""Everything a run is asked to do, declared once: each field is an ``actsac-run`` option with its help and check.

The command line is generated from these fields (``actsac.options``); code builds the same ``RunConfig``
directly. Simulator knobs are not here: they are ``actsac.drivers.sim.SimOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actsac.ensemble import ChunkExecutor, TemporalEnsembler
from actsac.files import output_problem
from actsac.options import AT_LEAST_1, FINITE, OptionError, check_options, option, parse_floats

from .backends import BACKENDS, ORT_THREADS
from .errors import RunRefused
from .health import HealthSettings
from .safety import POSITIVE, SafetySettings


def unused_sibling(directory: Path) -> Path:
    """DIR-2, DIR-3...: the first one that does not exist."""
    base = directory.resolve() if directory.name in ("", "..") else directory
    n = 2
    while (candidate := base.with_name(f"{base.name}-{n}")).exists():
        n += 1
    return candidate


EXEC_MODES = ("ensemble", "chunk")


@dataclass
class RunConfig:
    robot: str = option("so100", "built-in robot (so100, koch, upper_body) or a robot .toml file")
    port: str | None = option(None, "serial port (one-bus robot) or bus=PORT,bus2=PORT; default: the simulator")
    model: Path | None = option(None, "exported actor (.onnx), or a shipped example: so100-reach (the so100's "
                                      "default), so100-visual-reach (sees the simulated camera) or upper-body-reach "
                                      "(the upper_body's default)")
    fps: float | None = option(None, "control rate in Hz (default: the model's control_hz)", POSITIVE)
    exec_mode: str = option("ensemble", "ensemble: ACT temporal ensembling of every chunk covering a tick; chunk: "
                                        "run K steps of each chunk open loop",
                            (lambda v: v in EXEC_MODES, "must be ensemble or chunk"), flag="--exec", choices=EXEC_MODES)
    ensemble_coeff: float = option(0.01, "ensembling weight exp(-m * i), i = 0 the oldest chunk", FINITE)
    n_action_steps: int | None = option(None, "chunk mode: steps of each chunk to execute (default: the chunk "
                                              "size)", AT_LEAST_1, metavar="K")
    backend: str = option("ort", "ort: ONNX Runtime; trt: the TensorRT engine beside the .onnx; torch: eager "
                                 "PyTorch on the model.pt beside the .onnx",
                         (lambda v: v in BACKENDS, f"must be one of {', '.join(BACKENDS)}"), choices=BACKENDS)
    threads: int = option(ORT_THREADS, "inference threads", AT_LEAST_1)
    stochastic: bool = option(False, "sample tanh(mean + std * eps) instead of the deterministic action")
    seed: int = option(0, "seed of --stochastic sampling (and simulator faults)")
    duration_s: float | None = option(None, "seconds to run (default: until Ctrl-C)", POSITIVE, flag="--duration")
    goal: list[float] | None = option(None, "goal for the model's <joint>.goal features, in their order and unit "
                                            "(default: cycle the model's task goals); write --goal=-10,20,... when "
                                            "the first value is negative", type=parse_floats, metavar="V1,V2,...")
    calibration: Path | None = option(None, "calibration file (required on a real port; see actsac-calibrate)")
    camera: list[str] | None = option(None, "a camera's source, overriding the robot file's (repeatable): a device "
                                            "index or path, a stream URL or a video file; default: the robot's, "
                                            "simulated without --port", action="append", metavar="NAME=SOURCE")
    record: Path | None = option(None, "write ticks.jsonl (per tick), run.png and each camera's video here; a DIR "
                                       "that holds an earlier run's ticks.jsonl is refused before the run starts "
                                       "(pick another DIR, or --record-overwrite)", metavar="DIR")
    record_overwrite: bool = option(False, "with --record: replace an earlier run's ticks.jsonl, run.png and "
                                           "videos in DIR")
    summary_json: Path | None = option(None, "write the end-of-run summary here", metavar="FILE")
    realtime: bool = option(False, "run with SCHED_FIFO priority, as chrt -f does (Linux; needs root, "
                                   "CAP_SYS_NICE or an rtprio limit; otherwise the run continues at normal priority)")
    status: bool | None = option(None, "a live status line (rate, misses, inference, errors), refreshed twice a "
                                       "second (default: on when the output is a terminal)")
    safety: SafetySettings = field(default_factory=SafetySettings)  # the "safety" group of options
    health: HealthSettings = field(default_factory=HealthSettings)  # the "health" group: motor-health reads

    def validate(self) -> None:
        """Raise OptionError naming the first option out of its range (before anything is opened)."""
        check_options(self)
        if self.n_action_steps is not None and self.exec_mode != "chunk":
            raise OptionError("--n-action-steps applies to --exec chunk")

    def executor(self, chunk_size: int) -> TemporalEnsembler | ChunkExecutor:
        """What turns the model's chunks into one action per tick, checked against its chunk size."""
        if self.exec_mode == "ensemble":
            try:
                return TemporalEnsembler(self.ensemble_coeff, chunk_size)
            except ValueError as exc:
                raise RunRefused(f"--ensemble-coeff {self.ensemble_coeff:g}: {exc}") from None
        k = self.n_action_steps or chunk_size
        if not 1 <= k <= chunk_size:
            raise RunRefused(f"--n-action-steps {k}: must be between 1 and the model's chunk size {chunk_size}")
        return ChunkExecutor(k, chunk_size)

    def check_outputs(self, model_path: Path) -> None:
        """The run's output files can be written: refused now, not after the run."""
        if self.record is not None:
            log = Path(self.record) / "ticks.jsonl"
            if log.exists() and not self.record_overwrite:
                raise RunRefused(f"--record {self.record}: {log} exists (an earlier run's log): pass another DIR "
                                 f"(e.g. {unused_sibling(Path(self.record))}) or --record-overwrite")
            try:
                Path(self.record).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunRefused(f"--record {self.record}: cannot create the directory ({exc.strerror})") from None
        if self.summary_json is not None:
            problem = output_problem(self.summary_json, {"--model": model_path, "--calibration": self.calibration})
            if problem:
                raise RunRefused(f"--summary-json {self.summary_json}: {problem}")
