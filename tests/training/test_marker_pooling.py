"""`pooling = "marker"`: heads that read the party's bracketed mentions, trained, saved, reloaded, exported."""

import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import tiny_train_config
from training.backends import Classifier
from training.data import load_articles
from training.evaluate import evaluate_articles
from training.export import export_onnx
from training.modeling import load_sequence_model
from training.predictor import Predictor
from training.trainer import train


@pytest.fixture(scope="module")
def marker_model(tiny_base_model, tiny_corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("marker-models")
    config = tiny_train_config(tiny_base_model, tiny_corpus, output, "marker", pooling="marker")
    return train(config)


def test_the_marker_model_reloads_as_itself_and_learned_the_articles(marker_model, tiny_corpus):
    config = json.loads((marker_model / "config.json").read_text())
    assert config["architectures"] == ["MarkerPooledBert"] and config["marker_token_id"] > 0
    assert type(load_sequence_model(marker_model)).__name__ == "MarkerPooledBert"
    metrics = evaluate_articles(Predictor.from_folder(marker_model, backend="torch"), load_articles(tiny_corpus), bootstrap=0)
    assert metrics["stance"]["accuracy"] >= 0.9, metrics["stance"]
    assert metrics["sentiment"]["accuracy"] >= 0.9, metrics["sentiment"]


def test_the_second_half_is_the_mean_at_the_window_markers(marker_model):
    model = load_sequence_model(marker_model).eval()
    classifier = Classifier(marker_model, backend="torch")
    batch = {k: torch.from_numpy(v) for k, v in classifier.encode([("Japan", "[Japan] warned while [Tokyo] waited.")]).items()}
    with torch.inference_mode():
        hidden = model.bert(**batch)[0][0]
        ids, segment = batch["input_ids"][0], batch["token_type_ids"][0]
        at_markers = hidden[(ids == model.config.marker_token_id) & (segment == 1)]
        assert len(at_markers) == 2
        expected = model.classifier(torch.cat([hidden.mean(0), at_markers.mean(0)]))
        assert torch.allclose(model(**batch).logits[0], expected, atol=1e-5)


def test_padding_in_a_batch_does_not_change_an_answer(marker_model):
    classifier = Classifier(marker_model, backend="torch")
    short = ("Japan", "[Japan] warned.")
    long = ("Russia on talks", "[Russia] offered to host talks on the dispute next month in Moscow.")
    alone = classifier.predict([short])
    batched = classifier.predict([short, long])
    for task in ("stance", "sentiment"):
        assert np.allclose(alone[task][0], batched[task][0], atol=1e-5)


def test_without_a_marker_in_the_window_both_halves_are_the_token_mean(marker_model):
    model = load_sequence_model(marker_model).eval()
    classifier = Classifier(marker_model, backend="torch")
    # A bracket in the first segment is not a mention marker: only the window (segment 2) counts.
    batch = {k: torch.from_numpy(v) for k, v in classifier.encode([("[Japan]", "Kenya ratified the treaty.")]).items()}
    with torch.inference_mode():
        hidden = model.bert(**batch)[0]
        mean = hidden.mean(1)
        expected = model.classifier(torch.cat([mean, mean], dim=-1))
        assert torch.allclose(model(**batch).logits, expected, atol=1e-5)


def test_the_marker_model_exports_to_onnx_with_matching_answers(marker_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(marker_model, folder)
    export_onnx(folder)
    pairs = [
        ("Japan on missiles", "[Japan] demanded that North Korea halt its missile launches."),
        ("overall", "Kenya ratified it."),
    ]
    torch_probs = Classifier(folder, backend="torch").predict(pairs)
    onnx_probs = Classifier(folder, backend="onnx").predict(pairs)
    for task in ("stance", "sentiment"):
        assert np.abs(torch_probs[task] - onnx_probs[task]).max() < 0.05
