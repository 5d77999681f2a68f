"""Calibration: the error that measures it, and the temperatures training fits and serving applies."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import TEMPERATURE_GRID, calibration_bins, expected_calibration_error
from training.modeling import ModelMeta


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
