import csv
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from actsac.policy import build_actor, load_checkpoint, tasks
from actsac.policy.actors import Normalizer
from actsac.policy.demos import DemoError, load_npz_demos, save_npz_demos
from actsac.policy.replay import SequenceReplay
from actsac.policy.train import ChunkRunner, Collector, TrainConfig, evaluate, expert_episodes, train

# A short run: small ACT actor, few updates; well under a minute on 2 busy cores.
QUICK = dict(steps=160, online_start=80, eval_every=80, batch_size=64, demo_episodes=16, critic_hidden=[64, 64])


class RandomAgent:
    """Uniform random actions in [-1, 1]: the baseline a trained policy must beat."""

    def __init__(self, n, seed=0):
        self.n, self.rng = n, np.random.default_rng(seed)

    def reset(self, obs, images=None):
        pass

    observe = reset

    def __call__(self):
        return self.rng.uniform(-1, 1, (self.n, 6)).astype(np.float32)


def test_short_training_run_beats_a_random_policy(tmp_path):
    config = TrainConfig(out=str(tmp_path / "model.pt"), **QUICK)
    result = train(config, progress=False)
    eval_task = tasks.ReachTask(8, tasks.make_goals(8, seed=0), seed=0)
    eval_task.rng = np.random.default_rng(5)
    collector = Collector(eval_task, RandomAgent(8), result.actor.action_norm)
    collector.episode(goal_index=np.arange(8))
    random_return = collector.last_return.mean()
    trained = evaluate(result.actor, eval_task, seed=5)
    assert trained["eval/return"] > random_return + 10, (trained, random_return)

    # the checkpoint, the metrics CSV and the curve sit side by side
    loaded = load_checkpoint(tmp_path / "model.pt")
    assert loaded.config.observation_names == tasks.OBSERVATION_NAMES
    assert loaded.extra["task"]["name"] == "so100-reach" and len(loaded.extra["task"]["goals"]) == 8
    assert loaded.extra["train"]["steps_done"] == QUICK["steps"]
    with open(tmp_path / "model.metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [80, 160]
    assert {"losses/critic", "losses/actor", "losses/bc", "charts/bc_weight", "charts/alpha", "charts/entropy",
            "eval/success_rate", "eval/return"} <= set(rows[0])
    assert (tmp_path / "model.curve.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.curve.png", "model.metrics.csv", "model.pt"]


@pytest.mark.parametrize("actor,history,bc_only", [("act", 3, False), ("mlp", None, False), ("mlp", 2, True)],
                         ids=["act-history", "mlp", "mlp-history-bc-only"])
def test_every_actor_type_trains(tmp_path, actor, history, bc_only):
    config = TrainConfig(out=str(tmp_path / "m.pt"), actor=actor, history=history, bc_only=bc_only,
                         **{**QUICK, "steps": 12, "online_start": 6, "eval_every": 6, "chunk_size": 4})
    result = train(config, progress=False)
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.config.actor == actor and loaded.config.history == history
    obs = torch.zeros(2, *((history, 12) if history else (12,)))
    assert loaded.actor(obs)[0].shape == (2, 4, 6)
    assert (loaded.extra["train"]["env_steps"] == 0) == bc_only


def test_training_is_seeded(tmp_path):
    runs = [train(TrainConfig(out=str(tmp_path / f"{i}.pt"), **{**QUICK, "steps": 10, "online_start": 5,
                                                                   "eval_every": 5}), progress=False)
            for i in range(2)]
    a, b = (r.actor.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------- demos files
def expert_npz(path, n_episodes=4):
    actor_norm = Normalizer(TrainConfig().policy_config().action_stats, 6)
    episodes = expert_episodes(tasks.ReachTask(4, tasks.make_goals(), seed=0), n_episodes, actor_norm)
    with torch.no_grad():
        actions = [actor_norm.inverse(torch.from_numpy(e.actions)).numpy() for e in episodes]
    obs = np.concatenate([e.observations[:-1] for e in episodes])  # the file keeps the acting observations
    save_npz_demos(path, obs, np.concatenate(actions), np.concatenate([e.rewards for e in episodes]),
                   np.zeros(len(obs), bool), np.cumsum([len(e) for e in episodes]), tasks.OBSERVATION_NAMES)
    return episodes


def load(path):
    stats = TrainConfig().policy_config().action_stats
    return load_npz_demos(path, 12, 6, stats, tasks.OBSERVATION_NAMES)


def test_npz_demos_round_trip(tmp_path):
    episodes = expert_npz(tmp_path / "demos.npz")
    loaded = load(tmp_path / "demos.npz")
    assert len(loaded) == 4 and all(not e.terminal for e in loaded)
    for original, back in zip(episodes, loaded):
        assert np.allclose(back.observations, original.observations[:-1])
        assert np.allclose(back.actions, original.actions, atol=1e-5)


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def good_arrays(n=20):
    return dict(observations=np.zeros((n, 12), np.float32), actions=np.zeros((n, 6), np.float32),
                rewards=np.zeros(n, np.float32), terminals=np.zeros(n, bool), episode_ends=np.array([10, n]))


@pytest.mark.parametrize("change,message", [
    (lambda a: a.pop("rewards"), "missing array 'rewards'"),
    (lambda a: a.update(actions=np.zeros((20, 5))), r"array 'actions' has shape \(20, 5\), expected \(20, 6\)"),
    (lambda a: a.update(observations=np.zeros((20, 7))), r"array 'observations' has shape \(20, 7\)"),
    (lambda a: a.update(episode_ends=np.array([10, 15])), "array 'episode_ends' must increase strictly"),
    (lambda a: a.update(episode_ends=np.array([10.0, 20.0])), "array 'episode_ends' must be a non-empty 1-D integer"),
    (lambda a: a["terminals"].__setitem__(3, True), r"array 'terminals' is True inside an episode \(index 3\)"),
    (lambda a: a["rewards"].__setitem__(0, np.nan), "array 'rewards' has NaN"),
    (lambda a: a.update(observation_names=np.array(["x"] * 12)), "array 'observation_names' is"),
    (lambda a: a.update(observations=np.full((20, 12), "0.5")), "array 'observations' has dtype <U3, expected real"),
    (lambda a: a.update(actions=np.zeros((20, 6), bool)), "array 'actions' has dtype bool, expected real numbers"),
    (lambda a: a.update(rewards=np.zeros(20, complex)), "array 'rewards' has dtype complex128, expected real"),
    (lambda a: a.update(terminals=np.full(20, 0.5)), r"array 'terminals' has dtype float64, expected bool, integer"),
    (lambda a: a.update(terminals=np.full(20, "no")), "array 'terminals' has dtype <U2, expected bool"),
    (lambda a: a.update(observations=np.full((20, 12), 1e39)), "array 'observations' has values beyond the float32"),
], ids=["missing", "actions-shape", "obs-shape", "ends-short", "ends-float", "inner-terminal", "nan", "names",
        "obs-str", "actions-bool", "rewards-complex", "terminals-half", "terminals-str", "obs-huge"])
def test_bad_npz_files_give_one_line_errors(tmp_path, change, message):
    arrays = good_arrays()
    change(arrays)
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DemoError, match=message) as info:
        load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_terminal_episodes_load_and_other_files_are_refused(tmp_path):
    arrays = good_arrays()
    arrays["terminals"][9] = True
    assert [e.terminal for e in load(write_npz(tmp_path / "ok.npz", **arrays))] == [True, False]
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DemoError, match="not a readable .npz"):
        load(tmp_path / "junk.npz")
    with pytest.raises(DemoError, match="pyarrow"):
        load(tmp_path / "episode_000.parquet")
    with pytest.raises(DemoError, match="no such file"):
        load(tmp_path / "missing.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DemoError, match="not a readable .npz"):
        load(tmp_path / "empty.npz")


@pytest.mark.parametrize("name", ["plain.npy", "renamed.npz"])
def test_a_single_npy_array_is_refused(tmp_path, name):
    with open(tmp_path / name, "wb") as f:
        np.save(f, np.zeros((20, 12), np.float32))
    with pytest.raises(DemoError) as info:
        load(tmp_path / name)
    assert str(info.value) == f"{tmp_path / name}: a single .npy array, not an .npz archive of the documented layout"


def test_files_without_a_chunk_for_the_replay_are_refused(tmp_path):
    stats = TrainConfig().policy_config().action_stats
    arrays = good_arrays()
    arrays["episode_ends"] = np.arange(1, 21)  # twenty one-step episodes
    path = write_npz(tmp_path / "short.npz", **arrays)
    assert len(load_npz_demos(path, 12, 6, stats)) == 20  # without a chunk size, only the layout is checked
    with pytest.raises(DemoError, match=r"array 'episode_ends' has no episode long enough for a chunk of 10 steps "
                                        r"\(longest: 1; one that ends without a terminal needs at least 11\)"):
        load_npz_demos(path, 12, 6, stats, chunk_size=10)
    arrays["episode_ends"] = np.array([10, 20])  # the replay also needs the observation after the chunk
    with pytest.raises(DemoError, match=r"\(longest: 10;"):
        load_npz_demos(write_npz(tmp_path / "ten.npz", **arrays), 12, 6, stats, chunk_size=10)
    for ends, terminal in [([11, 20], None), ([1, 20], 0)]:  # one long enough, or one ending in a terminal
        arrays.update(episode_ends=np.array(ends), terminals=np.zeros(20, np.int8))
        if terminal is not None:
            arrays["terminals"][terminal] = 1
        replay = SequenceReplay(10)
        for episode in load_npz_demos(write_npz(tmp_path / "ok.npz", **arrays), 12, 6, stats, chunk_size=10):
            replay.add_episode(episode)
        assert replay.n_starts > 0


def test_actions_far_outside_the_joint_ranges_are_refused(tmp_path):
    """Actions in the wrong units (10x the range): one line naming the file, the joint, the value and the range.
    Slightly past a limit (an expert at it) is clipped, not refused."""
    arrays = good_arrays()
    arrays["actions"][:, 5] = 50.0  # the gripper (range_0_100) half open
    arrays["actions"][3, 5] = 105.0
    arrays["episode_ends"] = np.array([11, 20])
    assert len(load(write_npz(tmp_path / "ok.npz", **arrays))) == 2
    arrays["actions"][7, 2] = 1000.0
    arrays["actions"][8, 2] = -1000.0
    path = write_npz(tmp_path / "x10.npz", **arrays)
    with pytest.raises(DemoError) as info:
        train(TrainConfig(out=str(tmp_path / "m.pt"), demos=str(path), steps=2), progress=False)
    assert str(info.value) == (f"{path}: array 'actions' has 1000 at index 7 for joint '{tasks.JOINTS[2]}', outside "
                               f"its range [-100, 100] (2 such values): are the actions in the joints' units?")
    arrays["actions"][7:9, 2] = 0.0
    arrays["actions"][0, 5] = -50.0
    with pytest.raises(DemoError, match=rf"has -50 at index 0 for joint '{tasks.JOINTS[5]}', outside its range "
                                        r"\[0, 100\]"):
        stats = TrainConfig().policy_config().action_stats
        load_npz_demos(write_npz(tmp_path / "gripper.npz", **arrays), 12, 6, stats, action_names=tasks.JOINTS)
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------------------- the command
def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "actsac.policy.train_cli", *args], capture_output=True, text=True,
                          timeout=timeout)


CLI_QUICK = ["--steps", "12", "--online-start", "6", "--eval-every", "6", "--batch-size", "32",
             "--demo-episodes", "8", "--critic-hidden", "32", "32"]


def test_cli_trains_from_a_demo_file_and_writes_all_outputs(tmp_path):
    expert_npz(tmp_path / "demos.npz", n_episodes=8)
    out = tmp_path / "runs" / "model.pt"  # the directory is created
    proc = run_cli(*CLI_QUICK, "--demos", str(tmp_path / "demos.npz"), "--out", str(out), "--actor", "mlp")
    assert proc.returncode == 0, proc.stderr
    assert "8 demonstration episodes (480 transitions)" in proc.stderr
    assert f"{out}: MLPActor" in proc.stdout and "metrics:" in proc.stdout
    assert load_checkpoint(out).extra["train"]["config"]["demos"] == str(tmp_path / "demos.npz")
    assert out.with_suffix(".metrics.csv").is_file() and out.with_suffix(".curve.png").is_file()


@pytest.mark.parametrize("args,message", [
    (["--demos", "nowhere.npz"], "error: nowhere.npz: no such file"),
    (["--steps", "0"], "error: --steps: must be >= 1"),
    (["--bc-schedule", "exponential", "--bc-end", "0"], "error: --bc-schedule: bc schedule 'exponential' needs"),
    (["--episode-s", "nan"], "error: --episode-s: must be a finite number > 0 (got nan)"),
    (["--episode-s", "0.2"], "error: --episode-s: 0.2 s is 6 ticks at 30 Hz, fewer than the chunk size 10"),
    (["--gamma", "nan"], "error: --gamma: must be in (0, 1] (got nan)"),
    (["--actor-lr", "-1"], "error: --actor-lr: must be a finite number > 0"),
    (["--critic-hidden", "64", "0"], "error: --critic-hidden: must be >= 1 (got (64, 0))"),
    (["--bc-start", "nan"], "error: --bc-start: must be a finite number >= 0"),
    (["--target-entropy", "inf"], "error: --target-entropy: must be a finite number"),
], ids=["missing-demos", "zero-steps", "bad-schedule", "episode-nan", "episode-short", "gamma-nan", "lr-negative",
        "critic-width-0", "bc-nan", "entropy-inf"])
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    proc = run_cli(*args, "--out", str(tmp_path / "m.pt"))
    assert proc.returncode != 0
    assert proc.stderr.strip() == message or proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_cli_refuses_an_output_it_could_not_or_should_not_write(tmp_path):
    expert_npz(tmp_path / "demos.npz", n_episodes=8)
    for out, message in [(tmp_path, "is a directory"), (tmp_path / "demos.npz", "would overwrite the demonstrations")]:
        proc = run_cli(*CLI_QUICK, "--demos", str(tmp_path / "demos.npz"), "--out", str(out))
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # the poisoned actor's NaN actions
def test_a_diverged_actor_is_not_saved(tmp_path, monkeypatch):
    """Weights that went non-finite (here: forced after the last update) are refused, not saved as a model."""
    from actsac.policy import train as train_module

    real_evaluate = train_module.evaluate

    def evaluate_then_poison(actor, *args):
        result = real_evaluate(actor, *args)
        with torch.no_grad():
            next(actor.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(train_module, "evaluate", evaluate_then_poison)
    out = tmp_path / "model.pt"
    with pytest.raises(train_module.TrainingError, match="training diverged: .* non-finite weights"):
        train(TrainConfig(out=str(out), save_best=False, **{**QUICK, "steps": 20, "eval_every": 10}),
              progress=False)
    assert not out.exists()


def test_ctrl_c_writes_the_checkpoint(tmp_path):
    out = tmp_path / "model.pt"
    proc = subprocess.Popen([sys.executable, "-m", "actsac.policy.train_cli", *CLI_QUICK, "--steps", "100000",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # the summary line: the update loop is starting
        assert "updates" in line, line
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    checkpoint = load_checkpoint(out)
    assert checkpoint.extra["train"]["interrupted"] is True
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_chunks_run_open_loop_for_h_ticks():
    torch.manual_seed(0)
    actor = build_actor(TrainConfig(chunk_size=4).policy_config())
    runner = ChunkRunner(actor, deterministic=True)
    rng = np.random.default_rng(0)
    first, second = (rng.uniform(-50, 50, (3, 12)).astype(np.float32) for _ in range(2))
    runner.reset(first)
    actions = []
    for tick in range(8):
        actions.append(runner())
        runner.observe(second)  # a new observation every tick; only ticks 0 and 4 query the actor
    with torch.no_grad():
        expected = [actor.deterministic(torch.from_numpy(o)).numpy() for o in (first, second)]
    assert np.allclose(np.stack(actions[:4], 1), expected[0]) and np.allclose(np.stack(actions[4:], 1), expected[1])


def test_the_upper_body_task_trains_one_head_per_group_and_its_export_fits_the_robot(tmp_path):
    """actsac-train --task upper-body-reach: arm / torso / hand heads in the robot's units, an export that
    actsac-run's model-vs-robot check accepts for --robot upper_body."""
    from actsac.drivers.robots import load_robot
    from actsac.export.onnx_export import export_onnx
    from actsac.runtime.observation import check_model_against_robot

    config = TrainConfig(task="upper-body-reach", out=str(tmp_path / "ub.pt"),
                         **{**QUICK, "steps": 40, "eval_every": 40, "bc_only": True})
    result = train(config, progress=False)
    actor = load_checkpoint(result.checkpoint).actor
    assert [len(head.weight) for head in actor.mean_heads.heads] == [14, 6, 12]
    assert actor.config.state_dim == 64 and actor.config.observation_names[32] == "arm_0.goal"
    exported = export_onnx(load_checkpoint(result.checkpoint), tmp_path / "ub.onnx", log=lambda line: None)
    check_model_against_robot(exported.metadata, load_robot("upper_body"), "ub.onnx")
    assert exported.metadata.task["name"] == "upper-body-reach" and len(exported.metadata.task["goals"]) == 8
