"""What the figures were measured on: the machine's description and a rough fp32 peak of its CPU."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path

from actsac import __version__
from actsac.onnx_runtime import RuntimeMissing, import_onnxruntime


def machine_info(threads: int) -> dict:
    """The report's ``machine`` section; the CPU peak counts ``threads`` cores at most."""
    try:
        ort = import_onnxruntime()
    except RuntimeMissing:  # --bus and --loop's bus side need no ONNX Runtime; the loop itself refuses without
        ort = None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        cpuinfo = None
    names = (line.split(":", 1)[1].strip() for line in cpuinfo or [] if line.startswith(("model name", "Model")))
    processor = next(names, platform.processor() or "unknown")
    peak, how = cpu_peak_gflops(threads, cpuinfo)
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "processor": processor,
            "cpu_count": os.cpu_count(), "gpu": _gpu_name(), "python": platform.python_version(),
            "actsac": __version__, "onnxruntime": ort and ort.__version__,
            "ort_providers": ort.get_available_providers() if ort else [],
            "cpu_peak_gflops": peak, "cpu_peak_note": how}


def _gpu_name() -> str | None:
    """The NVIDIA GPU's name when nvidia-smi answers (None on a machine without one)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def cpu_peak_gflops(threads: int, lines: list[str] | None) -> tuple[float | None, str]:
    """A rough fp32 peak from /proc/cpuinfo's ``lines``: cores x clock x FMA width. Returns (GFLOP/s or None, how
    it was estimated)."""
    if lines is None:
        return None, f"unknown on {platform.system()}"
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), [])
    ghz = _max_clock_ghz(lines)
    if ghz is None:
        return None, "no clock rate in cpufreq or /proc/cpuinfo"
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 FMA"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 FMA"
    elif "asimd" in flags:
        per_cycle, isa = 16, "NEON FMA"
    else:
        return None, "no known vector FMA flags"
    cores = min(threads, os.cpu_count() or 1)
    how = f"{cores} core(s) x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle ({isa}), an upper bound"
    return cores * ghz * per_cycle, how


def _max_clock_ghz(cpuinfo_lines: list[str]) -> float | None:
    """The maximum clock from cpufreq (ARM boards have no MHz in /proc/cpuinfo), else the fastest core now."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
    except (OSError, ValueError):
        pass
    mhz = [float(line.split(":")[1]) for line in cpuinfo_lines if line.startswith("cpu MHz")]
    return max(mhz) / 1e3 if mhz else None
