"""actsac: deploy an ACT-SAC policy from a checkpoint to a real robot.

The subpackages are the project's top-level folders: ``actsac.policy`` (actor, training, checkpoints),
``actsac.export`` (ONNX / TensorRT), ``actsac.runtime`` (control loop), ``actsac.drivers`` (servo buses and
the simulator) and ``actsac.calibration``. This root package stays light: it imports nothing heavy.
"""

__version__ = "0.1.0"
