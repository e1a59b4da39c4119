"""so100-visual-reach: the goal is only in the camera image, so a policy must see to reach it."""

import numpy as np
import pytest
import torch

from actsac.policy import load_checkpoint, tasks
from actsac.policy.actors import Normalizer
from actsac.policy.demos import DemoError, load_npz_demos, save_npz_demos
from actsac.policy.train import TrainConfig, evaluate, expert_episodes, image_statistics, train
from tests.policy.test_train import CLI_QUICK, run_cli

VISUAL = dict(task="so100-visual-reach", n_goals=4, demo_episodes=16, batch_size=64)


def test_the_camera_policy_reaches_the_goals_a_blind_policy_cannot(tmp_path):
    """BC on the scripted expert, 400 updates (about a minute on 2 cores for the camera policy): with the camera
    the actor reaches most goals from 32 start poses it never trained from; the same actor without the camera
    reaches almost none (it can only guess which of the 4 goals the episode has)."""
    held_out = {}
    for images in (True, False):
        config = TrainConfig(**VISUAL, bc_only=True, images=images, steps=400, eval_every=400,
                             out=str(tmp_path / f"images-{images}.pt"))
        result = train(config, progress=False)
        task = config.make_task(32, tasks.make_goals(4, seed=0), seed=0)
        held_out[images] = evaluate(result.actor, task, seed=100)["eval/success_rate"]
    assert held_out[True] >= 0.6 and held_out[False] <= 0.3, held_out
    loaded = load_checkpoint(tmp_path / "images-True.pt")
    assert loaded.config.camera_names == ["front"] and loaded.config.observation_names == tasks.VISUAL_OBSERVATION_NAMES
    assert loaded.extra["task"]["cameras"] == [{"name": "front", "height": 48, "width": 64}]
    assert load_checkpoint(tmp_path / "images-False.pt").config.cameras == []


def test_sac_and_bc_train_on_camera_images_with_the_datas_statistics(tmp_path):
    config = TrainConfig(**VISUAL, steps=12, online_start=6, eval_every=6, critic_hidden=(32, 32),
                         out=str(tmp_path / "model.pt"))
    result = train(config, progress=False)
    assert result.critic_params is not None and [r["step"] for r in result.metrics] == [6, 12]
    assert np.isfinite(result.metrics[-1]["losses/critic"])
    camera = load_checkpoint(result.checkpoint).config.cameras[0]
    assert all(0.02 < m < 0.5 for m in camera.mean) and all(0.02 < s < 0.5 for s in camera.std)  # a dark scene


def test_resnet18_cameras_use_imagenet_statistics(tmp_path):
    config = TrainConfig(**{**VISUAL, "demo_episodes": 2, "batch_size": 4, "n_goals": 1}, image_encoder="resnet18",
                         image_size=(32, 32), bc_only=True, steps=2, eval_every=2, out=str(tmp_path / "model.pt"))
    camera = load_checkpoint(train(config, progress=False).checkpoint).config.cameras[0]
    assert camera.mean == pytest.approx([0.485, 0.456, 0.406]) and (camera.height, camera.width) == (32, 32)


def test_demonstrations_with_images_round_trip_through_npz(tmp_path):
    config = TrainConfig(**VISUAL)
    policy_config = config.policy_config()
    norm = Normalizer(policy_config.action_stats, 6)
    episodes = expert_episodes(config.make_task(2, tasks.make_goals(2), seed=0), 2, norm, images=True)
    obs = np.concatenate([e.observations[:-1] for e in episodes])
    frames = np.concatenate([e.images["front"][:-1] for e in episodes])
    with torch.no_grad():
        actions = np.concatenate([norm.inverse(torch.from_numpy(e.actions)).numpy() for e in episodes])
    ends = np.cumsum([len(e) for e in episodes])
    path = save_npz_demos(tmp_path / "demos.npz", obs, actions, np.zeros(len(obs)), np.zeros(len(obs), bool), ends,
                          tasks.VISUAL_OBSERVATION_NAMES, images={"front": frames})
    loaded = load_npz_demos(path, 6, 6, policy_config.action_stats, tasks.VISUAL_OBSERVATION_NAMES,
                            cameras=policy_config.cameras)
    assert np.array_equal(loaded[1].images["front"], episodes[1].images["front"][:-1])
    assert image_statistics(loaded, "front")[0] == pytest.approx(image_statistics(episodes, "front")[0], abs=0.01)
    save_npz_demos(tmp_path / "blind.npz", obs, actions, np.zeros(len(obs)), np.zeros(len(obs), bool), ends)
    with pytest.raises(DemoError, match=r"blind.npz: array 'images.front' is missing: the policy sees camera 'front'"):
        load_npz_demos(tmp_path / "blind.npz", 6, 6, None, cameras=policy_config.cameras)
    save_npz_demos(tmp_path / "float.npz", obs, actions, np.zeros(len(obs)), np.zeros(len(obs), bool), ends,
                   images={"front": frames[:, :32]})
    with pytest.raises(DemoError, match=r"array 'images.front' is uint8 \(120, 32, 64, 3\), expected uint8 "
                                        r"\(120, 48, 64, 3\)"):
        load_npz_demos(tmp_path / "float.npz", 6, 6, None, cameras=policy_config.cameras)


def test_cli_trains_the_visual_task(tmp_path):
    out = tmp_path / "model.pt"
    proc = run_cli(*CLI_QUICK, "--task", "so100-visual-reach", "--image-size", "32", "48", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "so100-visual-reach: SAC + BC" in proc.stderr
    camera = load_checkpoint(out).config.cameras[0]
    assert (camera.name, camera.height, camera.width) == ("front", 32, 48)


@pytest.mark.parametrize("args,message", [
    (["--image-size", "8", "64"], "error: --image-size: must be >= 16 (got (8, 64))"),
    (["--image-encoder", "vit"], "invalid choice: 'vit'"),
])
def test_cli_refuses_bad_camera_options(tmp_path, args, message):
    proc = run_cli("--task", "so100-visual-reach", *args, "--out", str(tmp_path / "m.pt"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "m.pt").exists()
