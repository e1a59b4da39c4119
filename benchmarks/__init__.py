"""actsac.bench: latency figures measured on the robot's own computer, one module per benchmark behind
``actsac-bench`` (``cli``), with numpy and onnxruntime only (onnx, PyTorch and matplotlib are optional).
The torch-side development measurements beside them (inference.py, sac_policy_scale.py, train_reach.py) run as
``python benchmarks/<name>.py``; actsac-bench never imports them.
"""


class BenchError(Exception):
    """A benchmark cannot run (a wrong input, a refused robot, a bus failure): one line, which actsac-bench
    prints as ``error: ...`` with exit code 1."""
