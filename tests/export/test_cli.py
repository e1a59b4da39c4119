"""`actsac-export`: a subprocess smoke test of the real command, and every bad input (one line, no file)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actsac.export import read_metadata
from actsac.export.cli import main
from actsac.export.tensorrt import missing_tensorrt_reason

from .conftest import make_checkpoint


def command() -> list[str]:
    script = Path(sys.executable).parent / "actsac-export"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from actsac.export.cli import main; main()"]


def test_smoke_default_output_beside_the_checkpoint(tmp_path):
    checkpoint = make_checkpoint(tmp_path, "act")
    proc = subprocess.run([*command(), str(checkpoint)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # the exporter's warnings (torchvision, constant folding...) are silenced
    out = proc.stdout
    for expected in ("verify ONNX Runtime vs PyTorch (fp32)", "action_mean     max abs error", "action_log_std",
                     "parameters: 118,988", "MB", "ONNX Runtime latency at batch 1", "p50", "wrote"):
        assert expected in out
    assert "FAIL" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.onnx", "act.pt"]  # no .data file, no temp file
    assert read_metadata(tmp_path / "act.onnx").chunk_size == 10


def bad_checkpoint(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "model.pt"
    if case == "missing":
        return path
    if case == "not_a_checkpoint":
        path.write_text("these are not weights\n")
    elif case == "not_weights_only":
        torch.save({"format": "actsac-checkpoint", "version": 1, "payload": RunsCode()}, path)
    elif case == "newer_version":
        good = make_checkpoint(tmp_path, "mlp")
        payload = torch.load(good, weights_only=True)
        good.unlink()
        torch.save({**payload, "version": 99}, path)
    elif case == "not_actsac":
        torch.save({"weights": torch.zeros(3)}, path)
    return path


class RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def run_main(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code, capsys.readouterr().err


def assert_one_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("case, fragment", [
    ("missing", "no such file"),
    ("not_a_checkpoint", "not a PyTorch checkpoint"),
    ("not_weights_only", "not weights-only"),
    ("newer_version", "format version 99 is newer"),
    ("not_actsac", "not an actsac checkpoint"),
])
def test_bad_checkpoints(tmp_path, capsys, case, fragment):
    path = bad_checkpoint(tmp_path, case)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = run_main([path], capsys)
    assert code == 1
    assert_one_line(err, str(path), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_output_in_a_missing_directory(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path, "mlp")
    code, err = run_main([checkpoint, "-o", tmp_path / "nope" / "actor.onnx"], capsys)
    assert code == 1
    assert_one_line(err, "does not exist", str(tmp_path / "nope"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.pt"]


def test_output_over_the_checkpoint_is_refused(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path, "mlp")
    data = checkpoint.read_bytes()
    code, err = run_main([checkpoint, "-o", checkpoint], capsys)
    assert code == 1 and checkpoint.read_bytes() == data
    assert_one_line(err, "would overwrite the checkpoint")


def test_failed_verification_exits_1_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import actsac.export.verify as verify

    monkeypatch.setitem(verify.TOLERANCE, "fp32", 1e-12)  # stricter than float32 arithmetic can meet
    checkpoint = make_checkpoint(tmp_path, "mlp")
    code, err = run_main([checkpoint, "-o", tmp_path / "out.onnx"], capsys)
    assert code == 1
    assert_one_line(err, "verification failed, nothing written", "exceeds the tolerance 1.0e-12")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.pt"]


@pytest.mark.skipif(missing_tensorrt_reason() is None, reason="TensorRT and a CUDA GPU are present here")
def test_trt_without_tensorrt_exits_2_before_writing(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path, "mlp")
    code, err = run_main([checkpoint, "--trt"], capsys)
    assert code == 2
    assert_one_line(err, "--trt", "TensorRT and a CUDA GPU are needed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.pt"]


@pytest.mark.parametrize("argv, fragment", [
    (["--batch", "0"], "between 1 and 1024"),
    (["--batch", "many"], "not a positive integer or 'dynamic'"),
    (["--opset", "12"], "opset 17 or newer"),
    (["--opset", "99"], "the installed onnx knows up to"),
    (["--int8", "--trt"], "drop --int8"),
    (["--int8", "--fp16"], "not allowed with argument"),
])
def test_bad_options_exit_2(tmp_path, capsys, argv, fragment):
    checkpoint = make_checkpoint(tmp_path, "mlp")
    code, err = run_main([checkpoint, *argv], capsys)
    assert code == 2 and fragment in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.pt"]


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert info.value.code == 0
    for option in ("--output", "--opset", "--fp16", "--int8", "--trt", "--batch", "Exit codes", "1e-05 (fp32)",
                   "0.1 (int8)"):
        assert option in out
