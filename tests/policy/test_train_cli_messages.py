"""What actsac-train tells the user: the summary line, the final line, and the files of an interrupted run."""

import csv
import math

import pytest

from actsac.policy import load_checkpoint
from actsac.policy import train as train_module
from actsac.policy import train_cli
from actsac.policy.train import TrainConfig, train

# A few updates of the small actor, one evaluation at the end: a few seconds on 2 busy cores.
TINY = dict(steps=4, online_start=2, eval_every=4, batch_size=32, demo_episodes=8, critic_hidden=(32, 32))


@pytest.mark.parametrize("changes,kind,critic", [
    ({"bc_only": True}, "BC only, ", False),
    ({"online_start": 1000}, "BC only: SAC starts after update 1000 (--online-start), beyond these 4 updates", True),
    ({}, "SAC + BC (after 2 BC-only updates), ", True),
], ids=["bc-only", "warm-start-only", "sac"])
def test_the_summary_line_says_what_runs(tmp_path, changes, kind, critic):
    lines = []
    train(TrainConfig(out=str(tmp_path / "m.pt"), **{**TINY, **changes}), progress=False, log=lines.append)
    assert lines[0].startswith(f"so100-reach: {kind}"), lines[0]
    assert ("critic" in lines[0]) == critic, lines[0]
    assert "SAC + BC" not in lines[0] or kind.startswith("SAC + BC")


def interrupt_at_update(monkeypatch, update):
    """Ctrl-C while batch ``update`` is being drawn (updates before it are whole)."""
    real, calls = train_module.sample_batch, []

    def sample_then_interrupt(*args):
        calls.append(1)
        if len(calls) == update:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_module, "sample_batch", sample_then_interrupt)


def run_cli_in_process(*args):
    with pytest.raises(SystemExit) as info:
        train_cli.run(train_cli.build_parser().parse_args(list(args)))
    return info.value.code


def test_ctrl_c_before_the_first_evaluation_evaluates_once_and_writes_the_csv(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model.pt"
    interrupt_at_update(monkeypatch, 4)
    code = run_cli_in_process("--steps", "100", "--eval-every", "50", "--online-start", "2", "--batch-size", "32",
                              "--demo-episodes", "8", "--critic-hidden", "32", "32", "--out", str(out))
    assert code == 130
    stdout, stderr = capsys.readouterr()
    assert "interrupted before the first evaluation: evaluating the actor of update 3 once" in stderr
    assert "interrupted, saved update 3: success " in stdout and "nan" not in stdout, stdout
    with open(out.with_suffix(".metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3] and not math.isnan(float(rows[0]["eval/success_rate"]))
    assert out.with_suffix(".curve.png").is_file()
    saved = load_checkpoint(out).extra["train"]
    assert saved["interrupted"] and saved["saved_step"] == 3 and saved["steps_done"] == 3
    assert set(saved["eval"]) == {"eval/success_rate", "eval/return"}


def test_ctrl_c_before_the_first_update_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "model.pt"
    interrupt_at_update(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):  # main() says "interrupted before a checkpoint was written", exit 130
        train(TrainConfig(out=str(out), **{**TINY, "steps": 100}), progress=False)
    assert list(tmp_path.iterdir()) == []
