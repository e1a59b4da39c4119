"""What actsac-bench makes of its figures: efficiency against the CPU peak, the latency histogram, result
files (schema ``actsac-bench/1``) and the table comparing them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from actsac.files import atomic_write

from . import BenchError
from .model import BACKENDS, CPU_PROVIDERS, TIMED

SCHEMA = "actsac-bench/1"
LOOP_KEYS = ("fps_achieved", "deadline_misses", "jitter_p99_us", "jitter_max_us", "loop_overhead_p50_us",
             "inference_p50_ms", "realtime")


def add_efficiency(report: dict) -> None:
    """Add and print achieved GFLOP/s at p50 and, on the CPU, the fraction of the estimated peak (null where
    unknown)."""
    flops, note, machine = report["model"]["flops"], report["model"]["flops_note"], report["machine"]
    print(f"  {flops / 1e6:.3f} MFLOP per call ({note}); peak: {machine['cpu_peak_note']}" if flops
          else f"  FLOPs: {note}")
    for r in report["backends"]:
        r["achieved_gflops"] = r["fraction_of_peak"] = None
        if r["status"] in TIMED and flops and r["p50_ms"]:
            r["achieved_gflops"] = flops / (r["p50_ms"] * 1e-3) / 1e9
            if machine["cpu_peak_gflops"] and r["provider"] in CPU_PROVIDERS:
                r["fraction_of_peak"] = r["achieved_gflops"] / machine["cpu_peak_gflops"]
            frac = r["fraction_of_peak"]
            extra = f", {100 * frac:.2f} % of the CPU peak" if frac is not None else ""
            print(f"  {r['backend']:9} {r['achieved_gflops']:.2f} GFLOP/s at p50{extra}")


def plot_histogram(results, path: Path) -> None:
    """Latency histograms of every timed backend on shared log-spaced bins (backends differ 10-100x)."""
    from matplotlib.figure import Figure  # without pyplot: no GUI backend, no global figure to close

    timed = [r for r in results if r.latencies_ms]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if timed:
        everything = np.concatenate([r.latencies_ms for r in timed])
        low, high = max(everything.min(), 1e-4), max(everything.max(), everything.min() * 1.01 + 1e-4)
        bins = np.geomspace(low, high, 80)
        for r in timed:
            label = f"{r.backend} [{r.provider}]" + (" FALLBACK" if r.status == "fallback" else "")
            ax.hist(r.latencies_ms, bins=bins, alpha=0.6, label=label)
        ax.set_xscale("log")
        ax.legend()
    ax.set(xlabel="batch-1 latency (ms, log scale)", ylabel="calls", title="actsac-bench: inference latency")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def write_report(report: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))


def load_report(path: str) -> dict:
    """A result file, checked enough that the comparison table cannot fail half-way."""
    try:
        report = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BenchError(f"{path}: cannot read it ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise BenchError(f"{path}: not an actsac-bench result (schema {found!r}, expected {SCHEMA!r})")
    backends = report.get("backends")
    if not isinstance(backends, list) or not all(isinstance(b, dict) and isinstance(b.get("backend"), str)
                                                 and "status" in b for b in backends):
        raise BenchError(f"{path}: field 'backends' must be a list of {{backend, status, ...}} objects")
    for section in ("machine", "model", "loop", "bus"):
        if not isinstance(report.get(section) or {}, dict):
            raise BenchError(f"{path}: field '{section}' must be an object or null")
    return report


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v, fmt: str = "{:g}") -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return fmt.format(v) if _number(v) else "-" if v is None else str(v)


def _pair(entry) -> str | None:
    """An entry's "p50/p99" in ms, None without both figures."""
    if isinstance(entry, dict) and _number(entry.get("p50_ms")) and _number(entry.get("p99_ms")):
        return f"{entry['p50_ms']:.3f}/{entry['p99_ms']:.3f}"
    return None


def compare(paths: list[str]) -> None:
    """One column per result file: machine, model, p50/p99 per backend, loop and bus figures."""
    reports = [load_report(p) for p in paths]

    def line(label: str, cells) -> None:  # 24 characters a column
        print(f"{label:<26}" + "".join(f"{str(c)[:22]:>24}" for c in cells))

    machines = [r.get("machine") or {} for r in reports]
    models = [r.get("model") or {} for r in reports]
    line("", [Path(p).name for p in paths])
    line("machine", [_cell(m.get("hostname")) for m in machines])
    line("processor", [_cell(m.get("processor")) for m in machines])
    line("cpu cores / gpu", [f"{_cell(m.get('cpu_count'))} / {m.get('gpu') or '-'}" for m in machines])
    boards = [r.get("board") if isinstance(r.get("board"), dict) else {} for r in reports]
    if any(b.get("jetson") or b.get("gpu") for b in boards):
        for label, cells in board_rows(boards).items():
            line(label, cells)
    line("model", [Path(m["path"]).name if isinstance(m.get("path"), str) else "-" for m in models])
    line("model MFLOP", [_cell(m["flops"] / 1e6 if _number(m.get("flops")) else None, "{:.3f}") for m in models])
    names = {b["backend"] for r in reports for b in r["backends"]}
    for backend in sorted(names, key=lambda n: (BACKENDS.index(n) if n in BACKENDS else len(BACKENDS), n)):
        cells = []
        for r in reports:
            b = next((x for x in r["backends"] if x["backend"] == backend), None)
            pair = _pair(b) if b is not None and b["status"] in TIMED else None
            if pair:
                cells.append(pair + ("*" if b["status"] == "fallback" else ""))
            else:
                cells.append("-" if b is None else str(b["status"]))
        line(f"{backend} p50/p99 ms", cells)
    loops = [r.get("loop") or {} for r in reports]
    for key in LOOP_KEYS:
        if any(key in v for v in loops):
            line(f"loop.{key}", [_cell(v.get(key)) for v in loops])
    buses = [_bus_rows(r.get("bus") or {}) for r in reports]
    for label in dict.fromkeys(k for rows in buses for k in rows):
        line(label, [rows.get(label, "-") for rows in buses])
    if any(b["status"] == "fallback" for r in reports for b in r["backends"]):
        print("(* ONNX Runtime fell back to another provider, usually the CPU: see the file's note)")


def board_rows(boards: list[dict]) -> dict[str, list[str]]:
    """The board's state per result file (benchmarks/board.py): two runs on one board in different modes, with
    clocks locked or not, or throttled, are told apart."""
    def mode(b):
        m = b.get("power_mode") or {}
        return "-" if not m else f"{m.get('id')} {m.get('name') or ''}".strip() + ("" if m.get("at_max") else " (not max)")

    def hottest(b):
        temps = b.get("temperatures_c") or {}
        if not temps:
            return "-"
        zone = max(temps, key=lambda z: temps[z].get("max") or -1e9)
        return f"{zone} {temps[zone].get('max'):g} C"

    def gpu(b):
        g = b.get("gpu") or {}
        return "-" if not g else f"{_cell(g.get('sm_mhz'))}/{_cell(g.get('sm_max_mhz'))} MHz {_cell(g.get('temperature_c'))} C"

    return {"board": [_cell(b.get("model")) for b in boards],
            "L4T / JetPack": [f"{_cell(b.get('l4t'))} / {_cell(b.get('jetpack'))}" for b in boards],
            "power mode": [mode(b) for b in boards],
            "clocks locked": [_cell(b.get("clocks_locked")) for b in boards],
            "throttled": [_cell(b.get("throttled")) for b in boards],
            "hottest zone (max)": [hottest(b) for b in boards],
            "gpu sm clock / temp": [gpu(b) for b in boards]}


def _bus_rows(bus: dict) -> dict[str, str]:
    """p50/p99 (and the wire-time floor) per bus and for all buses at once: of one robot's result, or of each
    robot of {"robots": [...]} (rows then named robot/bus)."""
    several = isinstance(bus.get("robots"), list)
    rows = {}
    for result in bus["robots"] if several else [bus]:
        if not isinstance(result, dict):
            continue
        prefix = f"bus {result.get('robot', '?')}/" if several else "bus "
        for entry in result.get("buses") or []:
            if isinstance(entry, dict):
                rows[f"{prefix}{entry.get('bus', '?')} p50/p99 ms"] = _pair(entry) or "-"
                if _number(entry.get("floor_ms")):
                    rows[f"{prefix}{entry.get('bus', '?')} floor ms"] = f"{entry['floor_ms']:.3f}"
        if isinstance(result.get("concurrent"), dict):
            rows[f"{prefix}all at once p50/p99 ms"] = _pair(result["concurrent"]) or "-"
    return rows
