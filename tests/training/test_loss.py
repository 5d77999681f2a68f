"""The two-head loss and its class weights."""

import math

import torch

from training.examples import Example
from training.labels import IGNORE_INDEX, STANCE_LABELS
from training.trainer import class_weights, two_head_loss


def example(stance: str | None, sentiment: int = IGNORE_INDEX) -> Example:
    return Example("t", "w", STANCE_LABELS.index(stance) if stance else IGNORE_INDEX, sentiment, "test")


def test_rare_classes_weigh_more_and_unlabelled_rows_do_not_count():
    examples = [example("cooperative")] * 6 + [example("pressure")] * 3 + [example("neutral")] + [example(None)] * 5
    weights = class_weights(examples)
    cooperative, pressure, neutral = weights["stance"]
    assert neutral > pressure > cooperative
    assert math.isclose(neutral, math.sqrt(10 / 3), rel_tol=1e-6)
    assert weights["sentiment"] == [1.0, 1.0, 1.0]  # no sentiment labels at all


def test_each_head_ignores_rows_without_its_label():
    logits = torch.zeros((2, 8))
    logits[0, 0] = 5.0  # row 0: confident cooperative, right
    labels = torch.tensor([[0, IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    loss = two_head_loss(logits, labels)
    assert 0 < loss.item() < 0.02  # only row 0's stance counts; sentiment and evidence have no label in the batch
    labels[1, 2] = 1  # row 1: an evidence label only; its logits say nothing, so it adds log(2)
    assert math.isclose(two_head_loss(logits, labels).item(), loss.item() + math.log(2), rel_tol=1e-5)
    labels[1, 2] = IGNORE_INDEX
    weighted = two_head_loss(logits, labels, weights={"stance": torch.tensor([2.0, 1.0, 1.0]), "sentiment": torch.ones(3)})
    assert math.isclose(weighted.item(), loss.item(), rel_tol=1e-5)  # a weighted mean over one row is the row
