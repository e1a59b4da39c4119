"""actsac-bench on real exported actors: real ONNX Runtime sessions, the simulator, real result files."""

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from actsac.bench.cli import main
from actsac.bench.model import onnx_flops
from actsac.bench.report import SCHEMA
from tests.conftest import BLOCK_TORCH_AND_ONNX, so100_groups

TASK = {"name": "so100-reach", "goals": [[0.0] * 6, [10.0, -10.0, 5.0, 0.0, 0.0, 50.0]], "goal_hold_s": 1.0,
        "success_tolerance": 5.0}
BACKEND_KEYS = {"backend", "status", "note", "provider", "iters", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms",
                "achieved_gflops", "fraction_of_peak"}


def small_config(actor: str):
    from actsac.policy import NormStats, PolicyConfig

    low, high = [-100.0] * 5 + [0.0], [100.0] * 5 + [100.0]
    joints = so100_groups()[0].joints
    return PolicyConfig.from_preset(
        "small", state_dim=12, action_groups=so100_groups(), chunk_size=10, actor=actor,
        obs_stats=NormStats.min_max(low + low, high + high), action_stats=NormStats.min_max(low, high),
        observation_names=[f"{j}.pos" for j in joints] + [f"{j}.goal" for j in joints])


@pytest.fixture(scope="module")
def actors(tmp_path_factory):
    """{"act": actor.onnx, "mlp": ...}: small actors exported by actsac's exporter, each model.pt beside it."""
    import torch

    from actsac.export.onnx_export import export_onnx
    from actsac.policy import build_actor, load_checkpoint, save_checkpoint

    directory = tmp_path_factory.mktemp("bench")
    out = {}
    for kind in ("act", "mlp"):
        torch.manual_seed(0)
        checkpoint = save_checkpoint(directory / f"{kind}.pt", build_actor(small_config(kind)).eval(),
                                     extra={"task": TASK})
        out[kind] = export_onnx(load_checkpoint(checkpoint), directory / f"{kind}.onnx", log=lambda _: None).path
    return out


def bench(argv, capsys):
    """main(argv) in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def act_report(actors, tmp_path_factory):
    """One full run on the ACT actor: every backend, JSON and histogram (run once, checked by several tests)."""
    out = tmp_path_factory.mktemp("report")
    argv = [actors["act"], "--backends", "ort,ort-cuda,ort-trt,trt,torch", "--iters", "40", "--warmup", "5",
            "--json", out / "act.json", "--plot", out / "act.png"]
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 0
    return out / "act.json", out / "act.png"


def test_json_follows_the_schema(act_report):
    report = json.loads(act_report[0].read_text())
    assert report["schema"] == SCHEMA
    assert set(report) == {"schema", "created", "machine", "settings", "model", "backends", "loop", "bus", "camera",
                           "board"}
    assert report["board"]["jetson"] is False and report["board"]["power_mode"] is None  # this machine
    assert report["loop"] is None and report["bus"] is None
    assert report["settings"] == {"backends": ["ort", "ort-cuda", "ort-trt", "trt", "torch"], "threads": 2,
                                  "iters": 40, "warmup": 5}
    assert report["model"]["chunk_size"] == 10 and report["model"]["action_dim"] == 6
    assert report["model"]["observation_shape"] == [12] and len(report["model"]["sha256"]) == 64
    assert [b["backend"] for b in report["backends"]] == ["ort", "ort-cuda", "ort-trt", "trt", "torch"]
    for entry in report["backends"]:
        assert set(entry) == BACKEND_KEYS
        if entry["status"] in ("ok", "fallback"):
            assert entry["iters"] == 40 and entry["provider"]
            assert 0 < entry["p50_ms"] <= entry["p90_ms"] <= entry["p99_ms"] <= entry["max_ms"]
            assert entry["achieved_gflops"] > 0
        else:
            assert entry["iters"] == 0 and entry["p50_ms"] is None and entry["note"]
    ort = report["backends"][0]
    assert ort["status"] == "ok" and ort["provider"] == "CPUExecutionProvider"
    if report["machine"]["cpu_peak_gflops"]:
        assert 0 < ort["fraction_of_peak"] < 1


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here: this checks the CPU-only case")
def test_gpu_backends_on_a_cpu_only_machine_are_never_reported_as_gpu(act_report):
    import onnxruntime as ort

    report = json.loads(act_report[0].read_text())
    by_name = {b["backend"]: b for b in report["backends"]}
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        for name, provider in (("ort-cuda", "CUDAExecutionProvider"), ("ort-trt", "TensorrtExecutionProvider")):
            entry = by_name[name]
            assert entry["status"] in ("fallback", "skipped", "failed") and entry["provider"] != provider
            if entry["status"] == "fallback":
                assert entry["provider"] == "CPUExecutionProvider" and provider in entry["note"]
                assert entry["fraction_of_peak"] is not None  # it ran on the CPU, so the CPU peak bounds it
    assert by_name["trt"]["status"] == "skipped" and "TensorRT" in by_name["trt"]["note"]
    assert by_name["torch"]["status"] == "ok" and by_name["torch"]["provider"] == "torch-cpu"


def test_histogram_is_a_png(act_report):
    import matplotlib.image

    image = matplotlib.image.imread(str(act_report[1]))
    assert act_report[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.shape[0] > 100 and image.shape[1] > 100


def test_flops_match_a_hand_count(actors):
    """2 x multiply-adds of the Linear and attention products; biases and element-wise ops are left out."""
    s, h, a = 12, 10, 6
    hidden = 128
    mlp_macs = s * hidden + hidden * hidden + 2 * hidden * (h * a)  # trunk, then the mean and log-std heads
    assert onnx_flops(actors["mlp"])[0] == 2 * mlp_macs

    d, ff = 64, 256
    # The exported graph folds attention over the one memory token into one d x d map of that token, and the
    # decoder's self-attention over the learned queries into a constant (actsac.export.fold).
    encoder = d * d + 2 * d * ff
    decoder = d * d + h * 2 * d * ff  # cross-attention (on the memory token), feed-forward on the H queries
    act_macs = s * d + encoder + decoder + 2 * h * d * a
    flops, note = onnx_flops(actors["act"])
    assert flops == 2 * act_macs == 754_176
    assert "MatMul/Gemm" in note and "unresolved" not in note


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_flops_of_fp16_and_int8_graphs_are_the_fp32_count(actors, tmp_path, precision):
    """The fp16 converter appends its input casts after the nodes that read them and keeps symbolic shapes;
    int8 graphs multiply with MatMulInteger: both once counted 0 FLOPs."""
    from actsac.export.onnx_export import export_onnx
    from actsac.policy import load_checkpoint

    exported = export_onnx(load_checkpoint(actors["act"].with_suffix(".pt")), tmp_path / f"act-{precision}.onnx",
                           precision=precision, log=lambda _: None).path
    flops, note = onnx_flops(exported)
    assert flops == onnx_flops(actors["act"])[0] == 754_176
    assert "unresolved" not in note


BLOCKER = BLOCK_TORCH_AND_ONNX + textwrap.dedent("""
    from actsac.bench.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        assert not any(k.split(".")[0] in ("torch", "onnx") for k in sys.modules), "torch/onnx got imported"
        raise
""")


def test_without_torch_and_onnx_the_torch_backend_and_flops_are_skipped_with_a_note(actors, tmp_path):
    out = tmp_path / "robot.json"
    proc = subprocess.run([sys.executable, "-c", BLOCKER, str(actors["act"]), "--backends", "ort,torch",
                           "--iters", "20", "--warmup", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    ort, torch_entry = report["backends"]
    assert ort["status"] == "ok" and ort["p50_ms"] > 0
    assert torch_entry["status"] == "skipped" and "PyTorch is not installed" in torch_entry["note"]
    assert "PyTorch is not installed" in proc.stdout
    assert report["model"]["flops"] is None and "onnx package is not installed" in report["model"]["flops_note"]
    assert ort["achieved_gflops"] is None


def test_compare_prints_a_table(act_report, actors, tmp_path, capsys):
    other = tmp_path / "robot.json"
    code, _, _ = bench([actors["mlp"], "--backends", "ort", "--iters", "20", "--warmup", "2", "--json", other], capsys)
    assert code == 0
    code, out, err = bench(["--compare", act_report[0], other], capsys)
    assert code == 0 and not err
    lines = out.splitlines()
    assert "act.json" in lines[0] and "robot.json" in lines[0]
    mine = json.loads(act_report[0].read_text())["backends"][0]
    ort_row = next(line for line in lines if line.startswith("ort p50/p99"))
    assert f"{mine['p50_ms']:.3f}/{mine['p99_ms']:.3f}" in ort_row and len(ort_row.split()) == 5
    torch_row = next(line for line in lines if line.startswith("torch p50/p99"))
    assert torch_row.split()[-1] == "-"  # not timed in the second file
    assert next(line for line in lines if line.startswith("model MFLOP")).split()[2:] == ["0.754", "0.067"]


def test_loop_on_the_simulator(tmp_path):
    # the shipped example: an untrained actor's chunks jump, and the run's whole-chunk check drops them all
    out = tmp_path / "loop.json"
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--loop", "--model", "so100-reach",
                           "--duration", "1.5", "--fps", "50", "--no-realtime", "--json", str(out)],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    loop = report["loop"]
    assert report["model"] is None and report["backends"] == [] and report["bus"] is None
    assert loop["exit_code"] == 0 and loop["fps_target"] == 50.0 and 30 <= loop["ticks"] <= 76
    assert loop["chunks_received"] > 0 and loop["realtime"] is False
    assert set(loop["targets"]) == {"deadline_misses", "jitter_p99_us", "loop_overhead_p50_us"}
    assert loop["bench"]["policy"] == "so100-reach" and loop["bench"]["port"] is None
    assert loop["bench"]["health_hz"] == 5.0 and loop["health"]["reads"]["temperature"]["count"] > 0
    assert "jitter_p99_us" in proc.stdout and "safe" not in proc.stderr


def test_bus_cycle_on_the_simulator(tmp_path, capsys):
    out = tmp_path / "bus.json"
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--bus", "--cycles", "40",
                           "--json", str(out)], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["loop"] is None and report["model"] is None and report["bus"]["simulated"] is True
    (bus,) = report["bus"]["buses"]
    assert bus["bus"] == "main" and bus["family"] == "feetech" and bus["motors"] == 6 and bus["cycles"] == 40
    assert 0 < bus["floor_ms"] < bus["p50_ms"] <= bus["p99_ms"] <= bus["max_ms"]
    assert "floor ms" in proc.stdout
    code, table, _ = bench(["--compare", out], capsys)
    row = next(line for line in table.splitlines() if line.startswith("bus main p50/p99 ms"))
    assert code == 0 and row.split()[-1] == f"{bus['p50_ms']:.3f}/{bus['p99_ms']:.3f}"


def test_loop_options_of_actsac_run(actors, tmp_path):
    """--exec chunk and --record as in actsac-run; --require-targets: exit 1 exactly when a target is missed."""
    out, record = tmp_path / "loop.json", tmp_path / "record"
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--loop", "--model", str(actors["act"]),
                           "--duration", "1", "--fps", "50", "--no-realtime", "--exec", "chunk", "--record",
                           str(record), "--require-targets", "--json", str(out)],
                          capture_output=True, text=True, timeout=90)
    loop = json.loads(out.read_text())["loop"]
    met = all(t["met"] for t in loop["targets"].values())
    assert loop["exit_code"] == 0 and proc.returncode == (0 if met else 1), proc.stderr
    assert met or "missed a target" in proc.stderr
    assert (record / "ticks.jsonl").is_file()


def test_bus_cycle_of_several_robots(tmp_path, capsys):
    out = tmp_path / "bus.json"
    code, table, err = bench(["--bus", "--robot", "so100,koch", "--cycles", "20", "--no-wire-time", "--json", out],
                             capsys)
    assert code == 0, err
    lines = table.splitlines()
    assert lines[0].startswith("bus cycle: so100, koch on the simulator")
    assert [line.split()[0] for line in lines[2:4]] == ["so100", "koch"]  # one table, one header
    so100, koch = json.loads(out.read_text())["bus"]["robots"]
    assert so100["robot"] == "so100" and koch["robot"] == "koch" and so100["wire_time"] is False
    code, table, _ = bench(["--compare", out], capsys)
    row = next(line for line in table.splitlines() if line.startswith("bus koch/main p50/p99 ms"))
    assert code == 0 and row.split()[-1] == f"{koch['buses'][0]['p50_ms']:.3f}/{koch['buses'][0]['p99_ms']:.3f}"


@pytest.mark.parametrize("argv, message, code", [
    (["{tmp}/missing.onnx"], "missing.onnx: no such file", 1),
    (["{act}", "--backends", "ort,cuda"], "unknown backend 'cuda'", 2),
    (["{act}", "--backends", ","], "no backend given", 2),
    (["{act}", "--iters", "0"], "--iters: must be >= 1", 2),
    (["{act}", "--json", "{tmp}/no/such/dir/out.json"], "does not exist", 1),
    (["{act}", "--json", "{tmp}"], "--json {tmp}: is a directory", 1),
    (["{act}", "--plot", "{tmp}"], "--plot {tmp}: is a directory", 1),
    (["{act}", "--json", "{tmp}/out", "--plot", "{tmp}/out"], "--json and --plot both name", 2),
    (["{tmp}/garbage.onnx"], "garbage.onnx: not a readable ONNX file", 1),
    (["--compare", "{tmp}/bad.json"], "bad.json: not valid JSON", 1),
    (["--compare", "{tmp}/other.json"], "other.json: not an actsac-bench result", 1),
    (["--compare", "{tmp}/missing.json"], "missing.json: cannot read it", 1),
    (["--compare", "{tmp}/bad.json", "--loop"], "--compare only reads result files", 2),
    (["--compare", "{tmp}/bad.json", "--json", "{tmp}/out.json"], "--compare only reads result files", 2),
    (["--compare", "{tmp}/bad.json", "--plot", "{tmp}/out.png"], "--compare only reads result files", 2),
    (["--plot", "{tmp}/x.png", "--loop"], "--plot draws the model latencies", 2),
    (["--loop", "--model", "{tmp}/missing.onnx"], "missing.onnx: no such file", 1),
    (["--loop", "--fps", "0"], "--fps: must be positive", 2),
    (["--loop", "--duration", "inf"], "--duration: must be positive and finite", 2),
    (["--loop", "--robot", "nosuch"], "unknown robot 'nosuch'", 1),
    (["--bus", "--cycles", "0"], "--cycles: must be >= 1", 2),
    (["{act}", "--exec", "chunk"], "--exec is a --loop option", 2),
    (["--loop", "--baudrate", "57600"], "--baudrate is a --bus option", 2),
    (["--bus", "--no-wire-time", "--port", "/dev/null"], "--no-wire-time is for the simulator", 2),
    (["--loop", "--robot", "so100,koch"], "several robots are for --bus", 2),
    (["--bus", "--baudrate", "123"], "baudrate 123 is not a baud rate of sts3215", 1),
    ([], "give a model to time, --loop, --bus or --compare", 2),
])
def test_mistakes_are_one_line_errors(actors, tmp_path, capsys, argv, message, code):
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something-else/1"}))
    argv = [a.format(tmp=tmp_path, act=actors["act"]) for a in argv]
    exit_code, out, err = bench(argv, capsys)
    assert exit_code == code
    assert err.count("\n") == 1 and err.startswith("error: ") and message.format(tmp=tmp_path) in err, err
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "no").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, option", [
    (["{model}", "--json", "{model}"], "--json"),
    (["{model}", "--plot", "{link}"], "--plot"),  # a symlink to the model resolves to it
    (["--loop", "--model", "{model}", "--json", "{model}"], "--json"),
    (["--loop", "--calibration", "{model}", "--json", "{model}"], "--json"),
])
def test_an_output_never_overwrites_an_input(actors, tmp_path, capsys, argv, option):
    model, link = tmp_path / "actor.onnx", tmp_path / "link.onnx"
    shutil.copyfile(actors["act"], model)
    link.symlink_to(model)
    before = model.read_bytes()
    code, _, err = bench([a.format(model=model, link=link) for a in argv], capsys)
    assert code == 1 and err.startswith(f"error: {option} ") and "is an input of this run" in err, err
    assert err.count("\n") == 1 and model.read_bytes() == before


def test_a_camera_model_is_timed_with_a_frame_per_camera(tmp_path, capsys):
    import dataclasses

    import torch

    from actsac.export.onnx_export import export_onnx
    from actsac.policy import build_actor, load_checkpoint, save_checkpoint
    from actsac.policy.config import CameraConfig

    config = dataclasses.replace(small_config("act"), cameras=[CameraConfig.imagenet("front", 32, 48)])
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "cam.pt", build_actor(config).eval())
    model = export_onnx(load_checkpoint(checkpoint), tmp_path / "cam.onnx", log=lambda _: None).path
    code, out, err = bench([model, "--backends", "ort,torch", "--iters", "5", "--warmup", "1",
                            "--json", tmp_path / "cam.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "cam.json").read_text())
    assert report["model"]["cameras"] == [{"name": "front", "height": 32, "width": 48}]
    assert [(b["backend"], b["status"], b["iters"]) for b in report["backends"]] == [("ort", "ok", 5), ("torch", "ok", 5)]
