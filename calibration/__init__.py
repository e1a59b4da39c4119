"""actsac.calibration: raw ticks <-> user units, LeRobot-format calibration files, and `actsac-calibrate`.

The runtime needs only ``load_calibration``, ``default_calibration_path`` and ``apply_calibration``; none of
them imports torch. Submodules that touch the drivers import them lazily.
"""

from .files import (CALIBRATION_DIR_ENV, CalibrationError, CalibrationMissingError, default_calibration_dir,
                    default_calibration_path, import_calibration, load_calibration, missing_calibration_message,
                    save_calibration)
from .motors import apply_calibration, apply_to_robot
from .normalize import NORM_MODES, MotorCalibration, normalize, unnormalize

__all__ = ["MotorCalibration", "normalize", "unnormalize", "NORM_MODES", "CalibrationError",
           "CalibrationMissingError", "missing_calibration_message", "load_calibration", "save_calibration",
           "import_calibration", "default_calibration_dir", "default_calibration_path", "CALIBRATION_DIR_ENV",
           "apply_calibration", "apply_to_robot"]
