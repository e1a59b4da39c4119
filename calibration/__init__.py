"""actsac.calibration: LeRobot-format calibration files and `actsac-calibrate`.

The units (``actsac.drivers.units``) and the writes of offsets and limits to the motors
(``actsac.drivers.homing``) are the drivers'; this package reads, checks and saves the files, and runs the
interactive procedure. The runtime needs only ``load_calibration`` and ``default_calibration_path``; nothing
here imports torch.
"""

from .files import (CALIBRATION_DIR_ENV, CalibrationError, CalibrationMissingError, default_calibration_dir,
                    default_calibration_path, import_calibration, load_calibration, missing_calibration_message,
                    save_calibration)

__all__ = ["CalibrationError", "CalibrationMissingError", "missing_calibration_message", "load_calibration",
           "save_calibration", "import_calibration", "default_calibration_dir", "default_calibration_path",
           "CALIBRATION_DIR_ENV"]
