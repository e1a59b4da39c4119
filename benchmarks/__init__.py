"""actsac.bench: latency figures measured on the robot's own computer, one entry point per benchmark.

``actsac-bench`` (``cli``: arguments and dispatch only) runs the robot-side benchmarks, with numpy and
onnxruntime only (onnx, PyTorch and matplotlib are optional):

  * ``model``: an exported actor timed per backend, through the objects actsac-run uses; its FLOPs;
  * ``loop``: the control-loop benchmark, actsac-run's own loop judged against its timing targets;
  * ``bus``: the bus-cycle benchmark (sync read + sync write) next to its wire-time floor;
  * ``machine``: what the figures were measured on, and the CPU's estimated peak;
  * ``report``: achieved GFLOP/s, the latency histogram, result files and the comparison table.

The torch-side development measurements are scripts in this folder, run as ``python benchmarks/<name>.py``
(inference.py, sac_policy_scale.py, train_reach.py); actsac-bench never imports them.
"""


class BenchError(Exception):
    """A benchmark cannot run (a wrong input, a refused robot, a bus failure): one line, which actsac-bench
    prints as ``error: ...`` with exit code 1."""
