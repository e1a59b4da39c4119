"""The README's demo, shortened: actsac-train -> actsac-export -> actsac-run on the simulated SO-100, each as
the installed command a user types, with real files between them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the console scripts sit beside the interpreter of the environment
COMMANDS = ("actsac-train", "actsac-export", "actsac-run")


def run(args, timeout_s):
    result = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout_s)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}"
    return result


@pytest.mark.skipif(not all((BIN / c).exists() for c in COMMANDS),
                    reason="the console scripts are not installed beside this Python (pip install -e . first)")
def test_train_export_run_on_the_simulated_so100(tmp_path):
    demo = tmp_path / "demo"
    run(["actsac-train", "--task", "so100-reach", "--out", str(demo / "model.pt"), "--steps", "300",
         "--online-start", "200", "--eval-every", "150", "--demo-episodes", "16"], timeout_s=240)
    export = run(["actsac-export", str(demo / "model.pt")], timeout_s=180)
    assert "max abs error" in export.stdout and (demo / "model.onnx").is_file()
    summary_path = demo / "run" / "summary.json"
    result = run(["actsac-run", "--model", str(demo / "model.onnx"), "--duration", "3", "--exec", "ensemble",
                  "--record", str(demo / "run"), "--summary-json", str(summary_path)], timeout_s=120)
    assert result.stdout.splitlines()[0].startswith("actsac-run: no --port given: running on the simulated so100")
    summary = json.loads(summary_path.read_text())
    assert summary["exit_code"] == 0 and summary["ticks"] >= 80 and summary["nan_chunks"] == 0
    assert summary["safe_state"] == "torque off"
    assert {"ticks.jsonl", "run.png"} <= {p.name for p in (demo / "run").iterdir()}
    assert "plot" in result.stdout and "ticks" in result.stdout
