"""The state of the board a benchmark ran on: a Jetson's power mode, clocks, temperatures and throttling.

A Jetson's latency depends on its state as much as on the model: the power mode (``nvpmodel``), whether clocks
are locked at their maximum (``jetson_clocks``) and thermal throttling each move a figure a lot. Everything is
read from files, without root where the files allow it and without running NVIDIA's tools (REFERENCE.md
section 13), under a ``root`` directory so tests read recorded trees:

- board: ``/proc/device-tree/model``; L4T: the first line of ``/etc/nv_tegra_release`` (``# R35 (release),
  REVISION: 4.1, ...``), JetPack from NVIDIA's L4T -> JetPack table;
- power mode: ``/var/lib/nvpmodel/status`` (``pmode:0002``, written by nvpmodel) named by ``/etc/nvpmodel.conf``
  (``< POWER_MODEL ID=2 NAME=MAXN_SUPER >``). The fastest mode is not always id 0 (an Orin Nano Super has 15W=0,
  25W=1, MAXN_SUPER=2, 7W=3): the maximum is the MAXN* mode, else the one with the most watts in its name;
- clocks: each CPU's ``cpufreq/scaling_cur_freq`` against ``cpuinfo_max_freq`` (kHz), the GPU's devfreq node
  (``/sys/class/devfreq/*gv11b``, ``*ga10b``, ``*.gpu``: ``cur_freq`` against the highest of its
  ``available_frequencies``, Hz) and the EMC's ``/sys/kernel/debug/bpmp/debug/clk/emc/rate`` / ``max_rate`` (Hz,
  root only: null otherwise);
- temperatures: ``/sys/class/thermal/thermal_zone*/{type,temp}`` (milli-degC) and their ``trip_point_*_temp``.

On another machine every field is null, and on an x86 computer with an NVIDIA GPU the GPU's clocks and
temperature come from ``nvidia-smi`` where it answers. ``BoardMonitor`` samples temperatures and frequencies
during a run (start, max / min, end) and sets ``throttled`` when a frequency fell below its maximum while the
clocks had been locked, or a thermal zone passed a trip point.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

SAMPLE_S = 0.5
# NVIDIA's JetPack release notes: L4T release -> JetPack (the newest listed for each)
JETPACK = {"36.4.3": "6.2", "36.4": "6.1", "36.3": "6.0", "36.2": "6.0 DP", "35.6.0": "5.1.4", "35.5.0": "5.1.3",
           "35.4.1": "5.1.2", "35.3.1": "5.1.1", "35.2.1": "5.1", "35.1": "5.0.2", "34.1.1": "5.0.1 DP",
           "32.7.4": "4.6.4", "32.7.3": "4.6.3", "32.7.2": "4.6.2", "32.7.1": "4.6.1", "32.6.1": "4.6"}
GPU_DEVFREQ = re.compile(r"(gv11b|ga10b|gp10b|\.gpu)$")


def _text(path: Path) -> str | None:
    try:
        return path.read_text().replace("\x00", "").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(path: Path) -> int | None:
    text = _text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def l4t_version(root: Path) -> str | None:
    match = re.match(r"# R(\d+) \(release\), REVISION: ([\d.]+)", _text(root / "etc/nv_tegra_release") or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def power_mode(root: Path) -> dict | None:
    """{id, name, max_id, max_name, at_max} from nvpmodel's status file and its configuration, or None."""
    status = re.search(r"pmode:0*(\d+)", _text(root / "var/lib/nvpmodel/status") or "")
    modes = {int(i): name for i, name in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+)\s*>",
                                                    _text(root / "etc/nvpmodel.conf") or "")}
    if status is None:
        return None
    mode = int(status.group(1))
    best = _max_mode(modes)
    return {"id": mode, "name": modes.get(mode), "max_id": best, "max_name": modes.get(best),
            "at_max": None if best is None else mode == best}


def _max_mode(modes: dict[int, str]) -> int | None:
    maxn = [i for i, name in modes.items() if name.upper().startswith("MAXN")]
    if maxn:
        return max(maxn, key=lambda i: len(modes[i]))  # MAXN_SUPER over MAXN where both exist
    watts = {i: int(m.group(1)) for i, name in modes.items() if (m := re.match(r"(\d+)W", name))}
    return max(watts, key=watts.get) if watts else None


def _gpu_node(root: Path) -> Path | None:
    base = root / "sys/class/devfreq"
    nodes = sorted(p for p in base.iterdir() if GPU_DEVFREQ.search(p.name)) if base.is_dir() else []
    return nodes[0] if nodes else None


def frequencies(root: Path) -> dict:
    """Current clocks: {cpu: {cpuN: kHz}, gpu_hz, emc_hz} (absent parts null)."""
    cpus = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]))
    node = _gpu_node(root)
    return {"cpu_khz": {p.name: v for p in cpus if (v := _int(p / "cpufreq/scaling_cur_freq")) is not None},
            "gpu_hz": None if node is None else _int(node / "cur_freq"),
            "emc_hz": _int(root / "sys/kernel/debug/bpmp/debug/clk/emc/rate")}


def max_frequencies(root: Path) -> dict:
    """The hardware maxima, same keys: cpuinfo_max_freq, the GPU's highest available frequency, EMC max_rate."""
    cpus = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]))
    node = _gpu_node(root)
    gpu = None
    if node is not None:
        available = [int(v) for v in (_text(node / "available_frequencies") or "").split() if v.isdigit()]
        gpu = max(available) if available else _int(node / "max_freq")
    return {"cpu_khz": {p.name: v for p in cpus if (v := _int(p / "cpufreq/cpuinfo_max_freq")) is not None},
            "gpu_hz": gpu, "emc_hz": _int(root / "sys/kernel/debug/bpmp/debug/clk/emc/max_rate")}


def temperatures(root: Path) -> dict[str, float]:
    """{zone type: degC} of every thermal zone."""
    out = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        name, milli = _text(zone / "type"), _int(zone / "temp")
        if name and milli is not None and milli > -40000:  # unused zones read -256 degC
            out[name] = milli / 1000.0
    return out


def trip_points(root: Path) -> dict[str, float]:
    """{zone type: its lowest trip point, degC}: above it the kernel starts to throttle or cool."""
    out = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        trips = [v / 1000.0 for p in zone.glob("trip_point_*_temp") if (v := _int(p)) is not None and v > 0]
        name = _text(zone / "type")
        if name and trips:
            out[name] = min(trips)
    return out


def clocks_locked(now: dict, maxima: dict) -> bool | None:
    """Every CPU, the GPU and (when readable) the EMC at its maximum: what ``sudo jetson_clocks`` does."""
    pairs = [(now["cpu_khz"].get(c), m) for c, m in maxima["cpu_khz"].items()]
    pairs += [(now[k], maxima[k]) for k in ("gpu_hz", "emc_hz") if maxima[k] is not None]
    pairs = [(v, m) for v, m in pairs if v is not None and m]
    return None if not pairs else all(v >= 0.99 * m for v, m in pairs)


def read_board(root: Path = Path("/")) -> dict:
    """The board and its state now: every key present, null where not known (a machine that is no Jetson)."""
    model = _text(root / "proc/device-tree/model")
    l4t = l4t_version(root)
    jetson = l4t is not None
    maxima = max_frequencies(root) if jetson else None
    now = frequencies(root) if jetson else None
    return {"jetson": jetson, "model": model, "l4t": l4t, "jetpack": _jetpack(l4t),
            "power_mode": power_mode(root) if jetson else None,
            "clocks_locked": clocks_locked(now, maxima) if jetson else None,
            "max_frequencies": maxima, "gpu": None if jetson else nvidia_smi_state()}


def _jetpack(l4t: str | None) -> str | None:
    if l4t is None:
        return None
    return JETPACK.get(l4t) or JETPACK.get(".".join(l4t.split(".")[:2]))


def nvidia_smi_state() -> dict | None:
    """An NVIDIA GPU's clocks and temperature on a non-Jetson machine (None without nvidia-smi)."""
    query = "name,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,temperature.gpu"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    fields = [f.strip() for f in out.stdout.strip().splitlines()[0].split(",")]
    if len(fields) != 6:
        return None
    number = lambda v: float(v) if re.fullmatch(r"[\d.]+", v) else None  # noqa: E731 ("[N/A]" -> None)
    return {"name": fields[0], "sm_mhz": number(fields[1]), "sm_max_mhz": number(fields[2]),
            "mem_mhz": number(fields[3]), "mem_max_mhz": number(fields[4]), "temperature_c": number(fields[5])}


def warning(board: dict) -> str | None:
    """One line when a Jetson is not in its maximum power mode or its clocks are not locked, with the fix."""
    if not board["jetson"]:
        return None
    problems, fixes = [], []
    mode = board["power_mode"]
    if mode is not None and mode["at_max"] is False:
        problems.append(f"power mode {mode['id']} ({mode['name']}), not its maximum {mode['max_id']} "
                        f"({mode['max_name']})")
        fixes.append(f"sudo nvpmodel -m {mode['max_id']}")
    if board["clocks_locked"] is False:
        problems.append("clocks not locked at their maximum")
        fixes.append("sudo jetson_clocks")
    if not problems:
        return None
    return (f"warning: this Jetson is in {' and '.join(problems)}: its figures will be slower and vary more "
            f"than the board can do; run {' then '.join(fixes)} before benchmarking")


class BoardMonitor:
    """``with BoardMonitor(root) as monitor: ...``; ``monitor.report()`` is ``read_board`` plus the run's
    temperatures / frequencies (start, max or min, end) and ``throttled``. Samples every ``SAMPLE_S`` in a daemon
    thread on a Jetson; nothing on another machine."""

    def __init__(self, root: Path = Path("/"), interval_s: float = SAMPLE_S):
        self.root, self.interval_s = Path(root), interval_s
        self.board = read_board(self.root)
        self.samples: list[tuple[dict, dict]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "BoardMonitor":
        if self.board["jetson"]:
            self.sample()
            self._thread = threading.Thread(target=self._run, name="actsac-board", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self.sample()

    def sample(self) -> None:
        self.samples.append((temperatures(self.root), frequencies(self.root)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def report(self) -> dict:
        out = {**self.board, "temperatures_c": None, "frequencies": None, "throttled": None,
               "throttle_reasons": []}
        if not self.samples:
            return out
        temps = [t for t, _ in self.samples]
        out["temperatures_c"] = {zone: {"start": temps[0][zone], "max": max(t.get(zone, -1e9) for t in temps),
                                        "end": temps[-1].get(zone)} for zone in temps[0]}
        series = self._frequency_series()
        out["frequencies"] = {name: {"start": v[0], "min": min(v), "end": v[-1]} for name, v in series.items()}
        reasons = []
        maxima = self.board["max_frequencies"] or {}
        flat_max = {**{f"{c}_khz": m for c, m in (maxima.get("cpu_khz") or {}).items()},
                    "gpu_hz": maxima.get("gpu_hz"), "emc_hz": maxima.get("emc_hz")}
        if self.board["clocks_locked"]:
            for name, values in series.items():
                if flat_max.get(name) and min(values) < 0.99 * flat_max[name]:
                    reasons.append(f"{name} fell to {min(values):.0f} (its maximum {flat_max[name]:.0f})")
        for zone, trip in trip_points(self.root).items():
            peak = out["temperatures_c"].get(zone, {}).get("max")
            if peak is not None and peak >= trip:
                reasons.append(f"{zone} reached {peak:g} degC (trip point {trip:g} degC)")
        out["throttled"], out["throttle_reasons"] = bool(reasons), reasons
        return out

    def _frequency_series(self) -> dict[str, list[float]]:
        series: dict[str, list[float]] = {}
        for _, f in self.samples:
            for cpu, v in f["cpu_khz"].items():
                series.setdefault(f"{cpu}_khz", []).append(v)
            for key in ("gpu_hz", "emc_hz"):
                if f[key] is not None:
                    series.setdefault(key, []).append(f[key])
        return series
