"""Training precision per machine: bf16 autocast where the hardware has it, fp32 elsewhere; both must learn."""

import json
from pathlib import Path

import pytest

from tests.conftest import tiny_train_config
from training.data import load_articles
from training.evaluate import evaluate_articles
from training.predictor import Predictor
from training.trainer import cpu_supports_bf16, train, use_bf16


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx2 fma", False),
        ("fpu avx512f avx512_bf16 avx2", True),
        ("fpu amx_bf16 amx_tile avx2", True),
        ("fpu avx512_bf16x avx2", False),  # a flag must match whole, not as a prefix
    ],
)
def test_bf16_capable_cpus_are_recognised_by_their_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_supports_bf16(cpuinfo) is expected


def test_a_machine_without_cpuinfo_trains_in_fp32(tmp_path):
    assert cpu_supports_bf16(tmp_path / "missing") is False


def test_forced_settings_override_the_machine():
    assert use_bf16("yes") is True
    assert use_bf16("no") is False


def test_the_precision_this_machine_does_not_pick_also_learns(tiny_base_model, tiny_corpus, tmp_path):
    """CI machines differ: the fixture model covers this machine's path, this test the other one."""
    other = "no" if use_bf16("auto") else "yes"
    folder = train(tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "other-precision", bf16=other))
    assert json.loads(Path(folder, "data.json").read_text())["bf16"] is (other == "yes")
    metrics = evaluate_articles(Predictor.from_folder(folder), load_articles(tiny_corpus), bootstrap=0)
    assert metrics["stance"]["accuracy"] >= 0.9, metrics["stance"]
    assert metrics["sentiment"]["accuracy"] >= 0.9, metrics["sentiment"]
