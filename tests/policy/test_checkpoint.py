import os
import pickle

import numpy as np
import pytest
import torch

from actsac.policy import CheckpointError, build_actor, load_checkpoint, save_checkpoint
from actsac.policy.checkpoint import FORMAT_VERSION


@pytest.fixture
def saved(tmp_path, small_config):
    actor = build_actor(small_config).eval()
    return actor, save_checkpoint(tmp_path / "model.pt", actor)


def test_round_trip_gives_identical_outputs(saved, small_config):
    actor, path = saved
    loaded = load_checkpoint(path)
    assert loaded.config == small_config
    obs = torch.randn(5, 12) * 50
    for a, b in zip(actor(obs), loaded.actor(obs)):
        assert torch.equal(a, b)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "actsac-checkpoint", "version": 1, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="not weights-only"):
        load_checkpoint(path)


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(CheckpointError, match="evil.pkl"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_foreign_file(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"model": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not an actsac checkpoint"):
        load_checkpoint(path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt: not a PyTorch checkpoint"):
        load_checkpoint(text)
    noise = tmp_path / "noise.pt"  # not an unsafe pickle, as torch's weights-only loader would call it
    noise.write_bytes(np.random.default_rng(0).bytes(4096).replace(b"\x80", b"\x00", 1))
    with pytest.raises(CheckpointError, match="neither torch.save's zip archive nor a pickle"):
        load_checkpoint(noise)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_newer_format_version(saved):
    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def test_config_weights_mismatch(saved):
    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["config"]["dim_model"] = 32
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_checkpoint(path)


def test_save_into_missing_directory(tmp_path, small_config):
    with pytest.raises(CheckpointError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "model.pt", build_actor(small_config))
