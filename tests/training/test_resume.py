"""An interrupted run with `resume` continues from its last pass checkpoint instead of starting over."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from tests.conftest import tiny_train_config
from training.trainer import TwoHeadTrainer, train


class Interrupted(Exception):
    pass


def interrupt_after_first_checkpoint(monkeypatch) -> None:
    original = TwoHeadTrainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(TwoHeadTrainer, "_save_checkpoint", save_then_stop)


def test_a_resumed_run_ends_as_an_uninterrupted_one(tiny_base_model, tiny_corpus, tmp_path, monkeypatch):
    settings = dict(epochs=3, resume=True, make_current=False)
    whole = train(tiny_train_config(tiny_base_model, tiny_corpus, tmp_path / "whole", "run", **settings))

    config = tiny_train_config(tiny_base_model, tiny_corpus, tmp_path / "cut", "run", **settings)
    with monkeypatch.context() as patch:
        interrupt_after_first_checkpoint(patch)
        with pytest.raises(Interrupted):
            train(config)
    assert not (tmp_path / "cut" / "run").exists(), "an interrupted run leaves no finished-looking folder"

    resumed = train(config)
    data = json.loads((resumed / "data.json").read_text())
    assert data["resumed_from"].startswith("checkpoint-")
    assert not (tmp_path / "cut" / "current").exists(), "make_current = false leaves current alone"
    first, second = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name, tensor in first.items():
        assert (tensor - second[name]).abs().max().item() < 1e-4, name


def test_an_interrupted_run_resumes_only_with_the_same_settings(tiny_base_model, tiny_corpus, tmp_path, monkeypatch):
    config = tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "run", epochs=3, resume=True)
    with monkeypatch.context() as patch:
        interrupt_after_first_checkpoint(patch)
        with pytest.raises(Interrupted):
            train(config)
    changed = tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "run", epochs=3, resume=True, learning_rate=5e-4)
    with pytest.raises(ValueError, match="interrupted run with other settings"):
        train(changed)
