"""Calibration: the error that measures it, and the temperatures training fits and serving applies."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stanceline.cli import main
from training.calibration import TEMPERATURE_GRID, calibration_bins, expected_calibration_error, fit_temperatures
from training.data import load_articles
from training.modeling import ModelMeta
from training.predictor import Predictor


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_over_confident():
    rng = np.random.default_rng(0)
    confidences = rng.uniform(0.4, 1.0, 20000)
    calibrated = rng.uniform(size=confidences.size) < confidences
    assert expected_calibration_error(list(confidences), list(calibrated)) < 0.02
    over_confident = rng.uniform(size=confidences.size) < confidences - 0.3
    assert expected_calibration_error(list(confidences), list(over_confident)) == pytest.approx(0.3, abs=0.03)


def test_bins_cover_zero_to_one_and_count_every_answer():
    bins = calibration_bins([0.0, 0.5, 0.99, 1.0], [True, False, True, True])
    assert len(bins) == 15 and bins[0]["low"] == 0.0 and bins[-1]["high"] == 1.0
    assert sum(b["count"] for b in bins) == 4


def test_training_fits_temperatures_that_the_model_folder_carries(tiny_model):
    temperatures = ModelMeta.load(tiny_model).temperatures
    assert set(temperatures) == {"stance", "sentiment"}
    assert all(t in TEMPERATURE_GRID for t in temperatures.values())


def test_a_new_model_pools_geometrically_and_an_old_folder_keeps_the_mean_it_was_fitted_under(tiny_model, tmp_path):
    assert ModelMeta.load(tiny_model).window_pooling == "geometric"
    old = json.loads((tiny_model / "stanceline.json").read_text())
    del old["window_pooling"]
    folder = tmp_path / "old"
    shutil.copytree(tiny_model, folder)
    (folder / "stanceline.json").write_text(json.dumps(old))
    assert Predictor.from_folder(folder).pooling == "mean"
    assert Predictor.from_folder(folder, pooling="geometric").pooling == "geometric"


def test_calibrate_switches_the_pooling_and_refits_the_temperatures_in_one_write(tiny_model, tiny_corpus, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    dev = tiny_corpus  # one file of articles
    assert main(["calibrate", "--model", str(folder), "--window-pooling", "mean", "--dev", str(dev)]) == 0
    meta = ModelMeta.load(folder)
    assert meta.window_pooling == "mean"
    assert meta.temperatures == fit_temperatures(folder, load_articles(dev), "mean")
    assert Predictor.from_folder(folder).pooling == "mean"
    assert "window pooling geometric -> mean" in capsys.readouterr().out
    assert not list(folder.glob(".*partial")), "no half-written file is left beside the model"
