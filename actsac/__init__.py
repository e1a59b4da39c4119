"""actsac: deploy an ACT-SAC policy from a checkpoint to a real robot.

The subpackages are the project's top-level folders: ``actsac.policy`` (actor, training, checkpoints),
``actsac.export`` (ONNX / TensorRT), ``actsac.runtime`` (control loop), ``actsac.drivers`` (servo buses, the
robot component and the simulator), ``actsac.calibration`` (calibration files) and ``actsac.bench``
(``benchmarks/``: actsac-bench). This root package is the foundation they share (options, files, chunk
ensembling, timing, ONNX Runtime sessions): it imports nothing heavy and none of them.
"""

__version__ = "0.1.0"
