"""Calibration: choose the safety-utility operating point on a deployer's own traffic (`alignbeam calibrate`)."""

from alignbeam.calibrate.point import Target
from alignbeam.calibrate.rows import Row, harmful_rows, load_traffic, redteam_rows
from alignbeam.calibrate.run import Calibration, calibrate

__all__ = ["Calibration", "Row", "Target", "calibrate", "harmful_rows", "load_traffic", "redteam_rows"]
