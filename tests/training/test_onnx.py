"""The ONNX backends answer like the torch backend on the same model folder: float32 (`onnx`) to rounding,
int8 to its checked agreement; `auto` serves the fastest copy whose check passed, and never an int8 file
that is not batch-invariant."""

import json
import logging
import shutil

import numpy as np
import pytest

from tests.conftest import exported_copy
from training.backends import CHECK_FILE, FLOAT_FILE, INT8_FILE, Classifier, load_backend, served_copy
from training.data import load_articles
from training.export import SERVED_NAMES, check_backends, describe_check, export_onnx, wilson_interval
from training.predictor import Document, PairRequest, Predictor
from training.quantize import METADATA_KEY, SCHEME


@pytest.fixture(scope="module")
def exported_model(tiny_model, tmp_path_factory):
    return exported_copy(tiny_model, tmp_path_factory.mktemp("onnx") / "model")


def test_export_writes_an_int8_model_smaller_than_float(exported_model):
    assert (exported_model / INT8_FILE).stat().st_size < (exported_model / "model.onnx").stat().st_size
    assert not list(exported_model.glob(".*.part"))


def test_int8_runs_every_weighted_matrix_product_per_token_and_batched(exported_model):
    import onnx

    config = json.loads((exported_model / "config.json").read_text())
    int8 = onnx.load(str(exported_model / INT8_FILE))
    assert sum(node.op_type == "MatMulInteger" for node in int8.graph.node) == 6 * config["num_hidden_layers"]
    assert {prop.key: prop.value for prop in int8.metadata_props} == {METADATA_KEY: SCHEME}
    assert not load_backend(exported_model, "int8").per_row, "a per-token file needs no one-window calls"


def test_a_new_export_drops_the_check_of_the_previous_int8_file(exported_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(exported_model, folder)
    (folder / CHECK_FILE).write_text(json.dumps({"onnx_keeps_accuracy": True, "int8_keeps_accuracy": True}))
    assert load_backend(folder, "auto").name == "onnx"
    assert export_onnx(folder) == folder / FLOAT_FILE
    assert not (folder / CHECK_FILE).exists()
    assert load_backend(folder, "auto").name == "torch"


def test_onnx_probabilities_match_torch(exported_model):
    pairs = [
        ("Japan on missiles", "Japan demanded that North Korea halt its missile launches."),
        ("overall", "Kenya ratified the treaty on fisheries and praised the talks."),
    ]
    torch_probs = Classifier(exported_model, backend="torch").predict(pairs)
    float_probs = Classifier(exported_model, backend="onnx").predict(pairs)
    int8_probs = Classifier(exported_model, backend="int8").predict(pairs)
    for task in ("stance", "sentiment"):
        assert np.abs(torch_probs[task] - float_probs[task]).max() < 1e-5, "float32: the same arithmetic, reordered"
        assert np.abs(torch_probs[task] - int8_probs[task]).max() < 0.05
        assert (torch_probs[task].argmax(1) == float_probs[task].argmax(1)).all()
        assert (torch_probs[task].argmax(1) == int8_probs[task].argmax(1)).all()


@pytest.mark.parametrize("backend", ["onnx", "int8"])
def test_the_predictor_serves_from_onnx(exported_model, backend):
    predictor = Predictor.from_folder(exported_model, backend=backend)
    assert predictor.classifier.backend.name == backend
    text = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
    (answer,) = predictor.predict(
        [Document(text, [PairRequest("Japan", "missile launches"), PairRequest("Russia", "missile launches")])]
    )
    assert [r["stance"]["label"] for r in answer["results"]] == ["pressure", "cooperative"]


def test_the_server_loads_onnx_with_threads_that_sleep_between_operators(exported_model):
    from serving.app import load_predictor
    from serving.settings import Settings

    served = load_predictor(Settings(model_dir=str(exported_model), backend="onnx")).classifier.backend
    options = served.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = load_backend(exported_model, "onnx").session.get_session_options()
    with pytest.raises(RuntimeError, match="allow_spinning"):  # unset: ONNX Runtime's default, spinning
        default.get_session_config_entry("session.intra_op.allow_spinning")


def test_onnx_backend_without_export_names_the_fix(tiny_model):
    with pytest.raises(FileNotFoundError, match="make export"):
        Classifier(tiny_model, backend="onnx")


def test_auto_serves_float32_only_after_it_passed_the_dev_check(exported_model, tiny_corpus, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(exported_model, folder)
    (folder / CHECK_FILE).unlink(missing_ok=True)
    assert load_backend(folder, "auto").name == "torch", "an unchecked export is not served by default"

    record = check_backends(folder, load_articles(tiny_corpus), str(tiny_corpus), data_dir=tmp_path / "no-data")
    assert set(record["macro_f1"]) == {"torch", "onnx", "int8"} and record["sources"] == {"dev": record["windows"]}
    assert record["windows"] >= 30, "every window the predictor reads for the 30 dev pairs"
    assert record["macro_f1"]["onnx"] == record["macro_f1"]["torch"]
    for head, info in record["onnx"]["heads"].items():
        assert info["agreement"] == 1.0 and info["max_drift"] < 1e-4, head
    assert record["onnx_keeps_accuracy"]
    kept = [record["int8"]["heads"][head]["agreement"] >= record["min_agreement"] for head in ("stance", "sentiment")]
    assert record["int8_keeps_accuracy"] == all(kept)
    assert json.loads((folder / CHECK_FILE).read_text()) == record
    assert set(record["seconds"]) == {"torch", "onnx", "int8"} and record["int8"]["scheme"] == SCHEME

    def served_with(**changes) -> str:
        (folder / CHECK_FILE).write_text(json.dumps({**record, **changes}))
        return load_backend(folder, "auto").name

    both_pass = {"onnx_keeps_accuracy": True, "int8_keeps_accuracy": True}
    assert served_with(**both_pass, seconds={"onnx": 2.0, "int8": 1.0}) == "int8", "the faster copy that passed"
    assert served_with(**both_pass, seconds={"onnx": 1.0, "int8": 2.0}) == "onnx"
    assert served_with(onnx_keeps_accuracy=True, int8_keeps_accuracy=False, seconds={"onnx": 2.0, "int8": 1.0}) == "onnx"
    assert served_with(onnx_keeps_accuracy=False, int8_keeps_accuracy=False) == "torch"
    per_call = {**record["int8"], "scheme": None}
    assert served_with(**both_pass, int8=per_call, seconds={"onnx": 2.0, "int8": 1.0}) == "onnx", (
        "an int8 file scaled per call is never served by auto: batched, it is not invariant"
    )
    assert "auto serves int8" in describe_check({**record, **both_pass, "seconds": {"onnx": 2.0, "int8": 1.0}})
    assert load_backend(folder, "int8").name == "int8", "asking for int8 by name still gets it"


def test_an_older_folder_keeps_working_and_auto_says_why_it_serves_torch(exported_model, tmp_path, caplog):
    """Folders exported before the float32 check: an int8 check alone, or an int8 file alone."""
    folder = tmp_path / "model"
    shutil.copytree(exported_model, folder)
    (folder / CHECK_FILE).write_text(json.dumps({"heads": {}, "int8_keeps_accuracy": True}))
    with caplog.at_level(logging.WARNING, logger="training.backends"):
        assert load_backend(folder, "auto").name == "torch"
    assert "model.onnx has no check" in caplog.text and "stanceline export" in caplog.text

    (folder / FLOAT_FILE).unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.backends"):
        assert load_backend(folder, "auto").name == "torch"
    assert "no model.onnx" in caplog.text and "--backend int8" in caplog.text
    assert load_backend(folder, "int8").name == "int8"
    with pytest.raises(FileNotFoundError, match="make export"):
        load_backend(folder, "onnx")


@pytest.mark.parametrize("bf16", ["no", "yes"])
def test_int8_export_holds_after_fp32_and_bf16_training(tiny_base_model, tiny_corpus, tmp_path, bf16):
    """bf16 autocast runs on any CPU (slowly without AVX512-BF16), so both precisions are tested here."""
    from tests.conftest import tiny_train_config
    from training.trainer import train

    folder = train(
        tiny_train_config(tiny_base_model, tiny_corpus, tmp_path, f"exported-{bf16}", epochs=20, bf16=bf16, export_onnx=True)
    )
    record = json.loads((folder / CHECK_FILE).read_text())
    assert json.loads((folder / "data.json").read_text())["bf16"] is (bf16 == "yes")
    assert (folder / INT8_FILE).exists() and (folder / FLOAT_FILE).exists() and record["dev_file"] == str(tiny_corpus)
    assert record["onnx_keeps_accuracy"], record["onnx"]["heads"]
    assert record["int8_keeps_accuracy"], record["int8"]["heads"]
    served = served_copy(record)  # whichever both passing copies the check timed faster
    assert served in ("onnx", "int8") and load_backend(folder, "auto").name == served
    assert f"auto serves {SERVED_NAMES[served]}" in (folder / "README.md").read_text()


def test_the_check_reads_the_public_dev_portions_too(exported_model, tiny_corpus, tmp_path):
    from tests.training.test_public import write_upstream

    data_dir = write_upstream(tmp_path / "data")
    record = check_backends(exported_model, load_articles(tiny_corpus), str(tiny_corpus), data_dir=data_dir)
    assert {"dev", "newsmtsc:dev", "un-quadclass:dev"} <= set(record["sources"])
    assert record["windows"] == sum(record["sources"].values())


def test_agreement_intervals_narrow_with_the_sample():
    small, large = wilson_interval(29, 30), wilson_interval(2900, 3000)
    assert small[0] < 0.85 and 0.955 < large[0] < 0.967 < large[1] < 0.975
    assert (small[1] - small[0]) > 5 * (large[1] - large[0])
    assert wilson_interval(30, 30)[1] == 1.0
