"""actsac.calibration"""
