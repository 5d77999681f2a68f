"""Distillation: the teacher's soft labels are cached per window, and a student learns from them."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import tiny_train_config
from training.backends import Classifier
from training.catalog import Catalog
from training.data import load_articles
from training.distill import distillation_loss, teacher_fingerprint, teacher_logits
from training.examples import WindowOptions, examples_from_articles
from training.labels import output_width
from training.trainer import train


def test_the_loss_is_zero_when_the_student_matches_the_teacher_and_grows_apart():
    teacher = torch.randn(8, output_width())
    assert distillation_loss(teacher.clone(), teacher, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    near = distillation_loss(teacher + 0.1 * torch.randn_like(teacher), teacher, temperature=2.0)
    far = distillation_loss(-teacher, teacher, temperature=2.0)
    assert 0 < near.item() < far.item()


def test_rows_the_teacher_did_not_read_are_left_out_of_the_loss():
    teacher, student = torch.randn(6, output_width()), torch.randn(6, output_width())
    partial = teacher.clone()
    partial[3:] = float("nan")
    expected = distillation_loss(student[:3], teacher[:3], temperature=2.0)
    assert distillation_loss(student, partial, temperature=2.0).item() == pytest.approx(expected.item())
    assert distillation_loss(student, torch.full_like(teacher, float("nan")), temperature=2.0).item() == 0.0


def test_soft_labels_are_computed_once_per_window_and_teacher(tiny_model, tiny_corpus, tmp_path):
    examples = examples_from_articles(load_articles(tiny_corpus), Catalog.load(), "tiny", WindowOptions(200))
    doubled = examples + examples  # a run's passes repeat windows: each is read once
    logits, record = teacher_logits(tiny_model, doubled, tmp_path / "cache")
    distinct = len({(e.target, e.window_text) for e in examples})
    assert (record["windows"], record["computed"]) == (distinct, distinct)
    expected = Classifier(tiny_model, backend="torch").logits([(e.target, e.window_text) for e in examples])
    np.testing.assert_allclose(logits[: len(examples)], expected, atol=1e-5)
    np.testing.assert_array_equal(logits[: len(examples)], logits[len(examples) :])

    again, record = teacher_logits(tiny_model, examples, tmp_path / "cache")
    assert record["computed"] == 0, "the cache answers a second run"
    np.testing.assert_array_equal(again, logits[: len(examples)])


def test_other_ranks_wait_for_the_cache_instead_of_reading_the_teacher(tiny_model, tiny_corpus, tmp_path):
    examples = examples_from_articles(load_articles(tiny_corpus), Catalog.load(), "tiny", WindowOptions(200))
    result = {}

    def other_rank() -> None:
        result["logits"], result["record"] = teacher_logits(tiny_model, examples, tmp_path, compute=False, poll_seconds=0.05)

    waiting = threading.Thread(target=other_rank)
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive(), "it waits while the cache lacks its windows"
    logits, _ = teacher_logits(tiny_model, examples, tmp_path)
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert result["record"]["computed"] == 0
    np.testing.assert_array_equal(result["logits"], logits)


def test_a_changed_teacher_gets_its_own_cache(tiny_model, tmp_path):
    copy = shutil.copytree(tiny_model, tmp_path / "teacher")
    assert teacher_fingerprint(copy) == teacher_fingerprint(tiny_model)
    meta = json.loads((copy / "stanceline.json").read_text())
    (copy / "stanceline.json").write_text(json.dumps({**meta, "max_length": 32}))
    assert teacher_fingerprint(copy) != teacher_fingerprint(tiny_model)


def test_a_folder_that_is_not_a_model_cannot_teach(tiny_base_model, tiny_corpus, tmp_path):
    config = tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "student", teacher=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a Stanceline model folder"):
        train(config)


def swapped_teacher(model: Path, folder: Path) -> Path:
    """A copy of `model` whose stance head calls cooperative what the model calls pressure and back: a
    teacher that disagrees with the gold labels the model learned."""
    teacher = shutil.copytree(model, folder)
    weights = load_file(teacher / "model.safetensors")
    order = torch.tensor([1, 0, 2, *range(3, weights["classifier.bias"].shape[0])])
    weights["classifier.weight"], weights["classifier.bias"] = (
        weights["classifier.weight"][order],
        weights["classifier.bias"][order],
    )
    save_file(weights, teacher / "model.safetensors", metadata={"format": "pt"})
    return teacher


def test_a_student_taught_by_the_teacher_alone_answers_as_the_teacher(tiny_model, tiny_base_model, tiny_corpus, tmp_path):
    """With distill_weight 1 the gold labels carry no weight: the student follows a teacher that
    contradicts them, which it could not learn from the gold labels."""
    teacher = swapped_teacher(tiny_model, tmp_path / "teacher")
    config = tiny_train_config(
        tiny_base_model, tiny_corpus, tmp_path / "models", "student", teacher=str(teacher), distill_weight=1.0
    )
    student = train(config)
    data = json.loads((student / "data.json").read_text())
    assert data["teacher"]["fingerprint"] == teacher_fingerprint(teacher)
    assert "Teacher: `" in (student / "README.md").read_text()
    examples = examples_from_articles(load_articles(tiny_corpus), Catalog.load(), "tiny", WindowOptions(200))
    pairs = [(e.target, e.window_text) for e in examples]

    def stance(folder: Path) -> np.ndarray:
        return Classifier(folder, backend="torch").logits(pairs)[:, :3].argmax(axis=1)

    taught = stance(student)
    assert (taught == stance(teacher)).mean() > 0.7
    assert (taught == stance(teacher)).mean() > (taught == stance(tiny_model)).mean() + 0.3


def test_unlabelled_rows_need_a_teacher(tiny_base_model, tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="needs a teacher"):
        tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, "x", unlabelled_per_corpus=10)
    with pytest.raises(ValueError, match="needs a teacher that reads the public windows"):
        tiny_train_config(
            tiny_base_model, tiny_corpus, tmp_path, "x", teacher="t", distill_public=False, unlabelled_per_corpus=10
        )


def test_unlabelled_public_rows_join_the_run_and_the_teacher_reads_only_what_it_is_asked(
    tiny_model, tiny_base_model, tiny_corpus, tmp_path
):
    from tests.training.test_public import write_upstream
    from training import public

    public.fetch(tmp_path / "data", write_upstream(tmp_path / "mirror"))
    settings = dict(
        public_corpora=["newsmtsc"], data_dir=str(tmp_path / "data"), max_examples_per_corpus=1, epochs=2, teacher=str(tiny_model)
    )
    student = train(
        tiny_train_config(
            tiny_base_model, tiny_corpus, tmp_path / "models", "with-unlabelled", unlabelled_per_corpus=5, **settings
        )
    )
    data = json.loads((student / "data.json").read_text())
    assert data["public_corpora"]["newsmtsc"]["rows_used"] == 2
    assert data["public_corpora"]["newsmtsc"]["unlabelled_examples"] == 1, "the one row the run did not train on"

    bundled_only = train(
        tiny_train_config(tiny_base_model, tiny_corpus, tmp_path / "models", "bundled-only", distill_public=False, **settings)
    )
    record = json.loads((bundled_only / "data.json").read_text())["teacher"]
    examples = examples_from_articles(load_articles(tiny_corpus), Catalog.load(), "tiny", WindowOptions(200))
    assert record["windows"] == len({(e.target, e.window_text) for e in examples}), "no public window was read"
    assert "gold labels only" in (bundled_only / "README.md").read_text()
