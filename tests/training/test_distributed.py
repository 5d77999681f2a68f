"""Training under `torchrun` with 2 processes on one machine (gloo on CPU): rank 0 alone writes the folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_train_config
from training.config import TrainConfig
from training.trainer import train

TORCHRUN = shutil.which("torchrun", path=os.path.dirname(sys.executable))


def write_toml(config: TrainConfig, path: Path) -> Path:
    """A TOML file of `config` (JSON spells strings, numbers, booleans and lists as TOML does)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.to_dict().items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.skipif(TORCHRUN is None, reason="torchrun is not installed beside this Python")
def test_two_processes_train_one_model_folder_written_by_rank_zero(tiny_base_model, tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_base_model, tiny_corpus, tmp_path / "models", "ddp", epochs=30)
    command = [TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "stanceline.cli", "train"]
    command += ["--config", str(write_toml(config, tmp_path / "tiny.toml"))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=Path(__file__).parents[2])
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / "models" / "ddp"
    printed = [line for line in run.stdout.splitlines() if line.startswith(str(tmp_path))]
    assert printed == [str(folder)], "the folder is printed once, by rank 0"
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == ["current", "ddp"], "no leftover work folder"
    data = json.loads((folder / "data.json").read_text())
    assert data["processes"] == 2
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["dev"]["stance"]["macro_f1"] > 0.5, "the two processes learned the articles together"


def test_several_processes_need_a_run_name_and_a_batch_that_divides(tiny_base_model, tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="set run_name"):
        train(tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, ""))
    with pytest.raises(ValueError, match="batch_size 5 must divide evenly over the 2 processes"):
        train(tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "odd", batch_size=5))
