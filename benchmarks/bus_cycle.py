"""Latency of one bus cycle (sync read Present_Position + sync write Goal_Position) next to its wire-time floor.

    python benchmarks/bus_cycle.py                  # so100 (Feetech) and koch (Dynamixel) on the simulator
    python benchmarks/bus_cycle.py --robot upper_body --cycles 500
    python benchmarks/bus_cycle.py --robot so100 --port /dev/ttyACM0   # a real bus: torque must be off

A thin wrapper around ``actsac.drivers.bench.run_bus_cycle`` (also behind ``actsac-bench --bus``); see that
module for the wire-time floor and for what is written to a real robot and why it is safe.
"""

from __future__ import annotations

import argparse
import json
import signal

from actsac._cli import UserError, fail
from actsac.drivers.bench import format_bus_cycle, run_bus_cycle


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through the benchmark's finally blocks: torque off, port closed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", nargs="+", default=["so100", "koch"],
                        help="robots to measure: built-in names or robot .toml files (default: so100 koch)")
    parser.add_argument("--port", help="a real robot instead of the simulator: PORT, or BUS=PORT,... for several buses")
    parser.add_argument("--cycles", type=int, default=2000, help="timed cycles per bus (default 2000)")
    parser.add_argument("--baudrate", type=int, help="override every bus's baud rate")
    parser.add_argument("--no-wire-time", action="store_true", help="simulator answers at once (software cost only)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines instead of a table")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        for i, robot in enumerate(args.robot):
            result = run_bus_cycle(robot, args.port, args.cycles, wire_time=not args.no_wire_time,
                                   baudrate=args.baudrate)
            print(json.dumps(result) if args.json else format_bus_cycle(result, header=i == 0), flush=True)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
