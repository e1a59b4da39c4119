"""The robot as one hardware component (ros2_control's idea, STYLE.md): its parts, their lifecycle, user units.

    robot = Robot(spec, ports, calibration)
    robot.connect()                 # ports open, every motor answered, torque off
    robot.configure(period_s)       # the calibration written where the motors differ; bus timing for the period
    robot.activate()                # hold the present pose, torque on
    ... read_positions() / write_goals() ...
    robot.safe_stop(hold_s)         # hold, then torque off on every motor of every bus whatever failed; closed

Its parts are its motor buses, one worker thread per bus, so a composite robot's read or write costs its
slowest bus, not the sum of all (pyserial releases the GIL while it waits for bytes), and its cameras
(``drivers/cameras.py``), each capturing in its own thread: opened in ``connect`` after the buses, closed
after torque is off. ``read_frames`` hands the newest frame of each without waiting. The runtime never reaches
past this class to a ``MotorBus`` or a camera's source. Hardware states: disconnected -> connected (torque off, reads
allowed) -> active (torque on, goal writes allowed); ``read_health`` reads one group of health registers
(temperature, effort, voltage) in physical units; every exit (``safe_stop``, ``disconnect``, a ``with``
block's end, an error in ``connect``) turns torque off.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np

from .bus import MotorBus, disconnect_all, make_bus
from .cameras import Camera, Frame
from .errors import RobotStateError
from .health import health_register, to_physical
from .homing import apply_calibration
from .robots import RobotSpec
from .tables import Reg, motor_model
from .units import MotorCalibration, normalize, unnormalize

T = TypeVar("T")


def loop_bus_timing(period_s: float) -> tuple[float, float]:
    """(per-try reply timeout on top of the wire time, budget of all tries) so a retried bus operation still
    fits in one control tick; connecting and stopping keep the drivers' more patient defaults."""
    return min(0.02, max(0.003, 0.3 * period_s)), 0.5 * period_s


class Robot:
    """``Robot(spec, {"main": "/dev/ttyACM0"}, calibration)``; without a calibration each motor's
    ``sim_calibration`` gives the units and nothing is written (a simulated robot works out of the box)."""

    def __init__(self, spec: RobotSpec, ports: Mapping[str, str],
                 calibration: Mapping[str, MotorCalibration] | None = None,
                 cameras: Mapping[str, Camera] | None = None, **bus_options):
        missing = [b.name for b in spec.buses if b.name not in ports]
        if missing:
            raise ValueError(f"robot '{spec.name}': no port given for bus {', '.join(missing)}")
        self.spec = spec
        self.buses: dict[str, MotorBus] = {b.name: make_bus(b, ports[b.name], **bus_options) for b in spec.buses}
        self.calibration: dict[str, MotorCalibration] = {}
        for motor in spec.motors:
            cal = (calibration or {}).get(motor.name) or (None if calibration else motor.sim_calibration)
            if cal is None:
                raise ValueError(f"robot '{spec.name}': no calibration for motor '{motor.name}'")
            self.calibration[motor.name] = cal
        self._bus_of = {m.name: b.name for b in spec.buses for m in b.motors}
        self._mode = {m.name: m.norm_mode for m in spec.motors}
        self._resolution = {m.name: motor_model(m.model).resolution for m in spec.motors}
        self._to_write = dict(calibration) if calibration else None  # what configure() writes to the motors
        self._patient_timing = {name: (bus.timeout_s, bus.budget_s) for name, bus in self.buses.items()}
        self._loop_timing: tuple[float, float] | None = None
        self._pool = ThreadPoolExecutor(len(self.buses), "bus") if len(self.buses) > 1 else None
        self.cameras: dict[str, Camera] = dict(cameras or {})
        self.state = "disconnected"

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Connect every bus (concurrently), then open every camera; if one part fails, the others are closed
        again (a BusError or a CameraError)."""
        if self.state != "disconnected":
            return
        try:
            self._on_buses(lambda bus: bus.connect())
            for camera in self.cameras.values():
                camera.open()
        except BaseException:
            self._disconnect_all()
            raise
        self.state = "connected"

    def disconnect(self) -> None:
        """Torque off on every bus, then close every port; raises the first failure after trying all."""
        if self.state == "disconnected":
            return
        self.state = "disconnected"
        self._patient()
        self._disconnect_all(raise_errors=True)

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def close(self) -> None:
        """Disconnect and stop the bus workers."""
        try:
            self.disconnect()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def configure(self, period_s: float | None = None) -> dict[str, dict[str, int]]:
        """Write the calibration's homing offsets and limits where the motors differ (torque off; EEPROM is
        written only when needed), and with ``period_s`` size the bus timing that ``activate`` switches to.
        Returns ``{register: {motor: value}}`` of what was written."""
        self._require("connected")
        self._loop_timing = None if period_s is None else loop_bus_timing(period_s)
        if self._to_write is None:
            return {}
        merged: dict[str, dict[str, int]] = {}
        for bus in self.buses.values():
            for register, values in apply_calibration(bus, self._to_write).items():
                merged.setdefault(register, {}).update(values)
        return merged

    def activate(self) -> None:
        """Torque on holding the present pose; from now on each bus operation fits the configured period."""
        self.enable_torque()
        if self._loop_timing is not None:
            for bus in self.buses.values():
                bus.set_timing(*self._loop_timing)

    def safe_stop(self, hold_s: float = 0.0) -> str:
        """Hold the present pose for ``hold_s`` (when active), then torque off and close. Never raises: any
        failure is noted and passed over, torque off is always tried. Returns what was reached, in words."""
        self._patient()
        notes = []
        if self.state == "active" and hold_s > 0:
            try:
                self.write_goals(self.read_positions())
                time.sleep(hold_s)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"hold failed ({exc})")
        try:
            self.close()
            notes.append("torque off")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"TORQUE OFF FAILED: {exc}")
        return ", ".join(notes)

    def _patient(self) -> None:
        """Back to the drivers' patient bus timing: holding and turning torque off must not be rushed."""
        for name, bus in self.buses.items():
            bus.set_timing(*self._patient_timing[name])

    def enable_torque(self) -> None:
        """Hold the present pose (goal := present position), then turn torque on everywhere: no jump."""
        self._require("connected", "active")
        try:
            def hold(bus: MotorBus) -> None:
                bus.sync_write(Reg.Goal_Position, bus.sync_read(Reg.Present_Position))
                bus.enable_torque()

            self._on_buses(hold)
        except BaseException:
            for bus in self.buses.values():  # best effort: one bus's failure must not spare the others
                with contextlib.suppress(Exception):
                    bus.disable_torque()
            raise
        self.state = "active"

    def disable_torque(self) -> None:
        self._require("connected", "active")
        self.state = "connected"
        self._on_buses(lambda bus: bus.disable_torque())

    # ------------------------------------------------------------------ I/O in user units
    def read_positions(self) -> dict[str, float]:
        """Present position of every joint in its calibrated user unit (the motor's norm_mode)."""
        raw = self.read_raw(Reg.Present_Position)
        return {name: float(normalize(raw[name], self.calibration[name], self._mode[name], self._resolution[name]))
                for name in self.calibration}

    def write_goals(self, goals: Mapping[str, float]) -> None:
        """Goal positions in user units (any subset of the joints); only while torque is on."""
        self._require("active")
        unknown = [j for j in goals if j not in self._bus_of]
        if unknown:
            raise KeyError(f"robot '{self.spec.name}' has no joint {', '.join(map(repr, unknown))}")
        self.write_raw(Reg.Goal_Position, {
            name: int(unnormalize(value, self.calibration[name], self._mode[name], self._resolution[name]))
            for name, value in goals.items()})

    def read_health(self, group: str) -> dict[str, float]:
        """One health group (``drivers/health.py``: temperature degC, effort % of stall, voltage V) of every
        motor, one sync read per bus, the buses concurrently."""
        self._require("connected", "active")

        def read(bus: MotorBus) -> dict[str, float]:
            registers = {name: health_register(model, group) for name, model in bus.models.items()}
            raw = bus.sync_read_each(registers)
            return {name: to_physical(bus.models[name], group, value) for name, value in raw.items()}

        out: dict[str, float] = {}
        for values in self._on_buses(read).values():
            out.update(values)
        return out

    def bus_of(self, motor: str) -> str:
        """The name of the bus ``motor`` is on."""
        return self._bus_of[motor]

    def read_frames(self) -> dict[str, Frame | None]:
        """The newest frame of every camera (None before its first); never waits on a camera."""
        return {name: camera.latest() for name, camera in self.cameras.items()}

    def lost_cameras(self) -> dict[str, str]:
        """{camera label: why} for each camera whose source ended or failed."""
        return {camera.label: camera.lost for camera in self.cameras.values() if camera.lost}

    def show_goal(self, goal) -> bool:
        """Put a goal marker in the simulated scene (simulated cameras only); False when no camera can."""
        shown = False
        for camera in self.cameras.values():
            if hasattr(camera, "show_goal"):
                camera.show_goal(goal)
                shown = True
        return shown

    def joint_limits(self, joints: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) user-unit arrays: each joint's calibrated range [range_min, range_max] in its unit."""
        ends = np.array([[float(normalize(v, self.calibration[j], self._mode[j], self._resolution[j]))
                          for v in (self.calibration[j].range_min, self.calibration[j].range_max)] for j in joints])
        return ends.min(axis=1), ends.max(axis=1)

    def read_raw(self, register: str) -> dict[str, int]:
        """One register of every motor, raw ticks (calibration tools use this)."""
        self._require("connected", "active")
        out: dict[str, int] = {}
        for values in self._on_buses(lambda bus: bus.sync_read(register)).values():
            out.update(values)
        return out

    def write_raw(self, register: str, values: Mapping[str, int]) -> None:
        """One register of some motors, raw ticks, one unacknowledged sync write per bus (concurrently).
        Calibration tools write offsets and limits with torque off; use ``buses[...].write`` for an ack."""
        self._require("connected", "active")
        per_bus: dict[str, dict[str, int]] = {}
        for name, value in values.items():
            if name not in self._bus_of:
                raise KeyError(f"robot '{self.spec.name}' has no motor '{name}'")
            per_bus.setdefault(self._bus_of[name], {})[name] = int(value)
        self._on_buses(lambda bus: bus.sync_write(register, per_bus[bus.spec.name]), per_bus)

    # ------------------------------------------------------------------ helpers
    def _require(self, *states: str) -> None:
        if self.state not in states:
            raise RobotStateError(f"robot '{self.spec.name}' is {self.state}; this needs it {' or '.join(states)}")

    def _on_buses(self, fn: Callable[[MotorBus], T], only: Mapping | None = None) -> dict[str, T]:
        """Run ``fn`` on each bus (those named in ``only``), concurrently; raise the first error after all ended."""
        buses = [b for name, b in self.buses.items() if only is None or name in only]
        if self._pool is None or len(buses) == 1:
            return {b.spec.name: fn(b) for b in buses}
        futures = {b.spec.name: self._pool.submit(fn, b) for b in buses}
        results, first_error = {}, None
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except BaseException as exc:  # noqa: BLE001 (re-raised below, after every bus has finished)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return results

    def _disconnect_all(self, raise_errors: bool = False) -> None:
        first_error = disconnect_all(self.buses.values())  # torque off first: the cameras can wait
        for camera in self.cameras.values():
            camera.close()
        if raise_errors and first_error is not None:
            raise first_error
