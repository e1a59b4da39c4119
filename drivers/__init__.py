"""actsac.drivers: servo buses (Feetech, Dynamixel), robots made of buses, and a servo-bus simulator.

Import-light on purpose (no torch, no vendor SDK until a Dynamixel bus is made): the robot computer runs it.
"""

from .bus import MotorBus, make_bus
from .errors import (BusError, BusTimeoutError, ChecksumError, ConnectError, MotorStatusError, RobotSpecError,
                     RobotStateError)
from .robot import Robot
from .robots import BUILT_IN, BusSpec, MotorSpec, RobotSpec, load_robot

__all__ = ["MotorBus", "make_bus", "Robot", "RobotSpec", "BusSpec", "MotorSpec", "BUILT_IN", "load_robot",
           "BusError", "BusTimeoutError", "ChecksumError", "MotorStatusError", "ConnectError", "RobotSpecError",
           "RobotStateError"]
