"""The int8 ONNX backend answers like the torch backend on the same model folder."""

import shutil

import numpy as np
import pytest

from training.modeling import Classifier
from training.onnx_backend import INT8_FILE, export_onnx
from training.predictor import Document, PairRequest, Predictor


@pytest.fixture(scope="module")
def exported_model(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model, folder)
    export_onnx(folder)
    return folder


def test_export_writes_an_int8_model_smaller_than_float(exported_model):
    assert (exported_model / INT8_FILE).stat().st_size < (exported_model / "model.onnx").stat().st_size
    assert not list(exported_model.glob(".*.part"))


def test_onnx_probabilities_match_torch(exported_model):
    pairs = [
        ("Japan on missiles", "Japan demanded that North Korea halt its missile launches."),
        ("overall", "Kenya ratified the treaty on fisheries and praised the talks."),
    ]
    torch_probs = Classifier(exported_model, backend="torch").predict(pairs)
    onnx_probs = Classifier(exported_model, backend="onnx").predict(pairs)
    for task in ("stance", "sentiment"):
        assert np.abs(torch_probs[task] - onnx_probs[task]).max() < 0.05
        assert (torch_probs[task].argmax(1) == onnx_probs[task].argmax(1)).all()


def test_the_predictor_serves_from_onnx(exported_model):
    predictor = Predictor.from_folder(exported_model, backend="onnx")
    text = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
    (answer,) = predictor.predict(
        [Document(text, [PairRequest("Japan", "missile launches"), PairRequest("Russia", "missile launches")])]
    )
    assert [r["stance"]["label"] for r in answer["results"]] == ["pressure", "cooperative"]


def test_onnx_backend_without_export_names_the_fix(tiny_model):
    with pytest.raises(FileNotFoundError, match="make export"):
        Classifier(tiny_model, backend="onnx")
