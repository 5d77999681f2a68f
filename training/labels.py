"""Label sets of the model's heads, in the order of the model's output columns.

The model has one classification layer: the first three outputs are the stance head, the next three
the sentiment head, and the last two the evidence head (does this window show the pair's stance?),
which ranks the windows a pair is read through (see `predictor.aggregate`). `TASKS` are the heads
users get answers from; `HEADS` adds the evidence head. These tuples fix the order everywhere.
"""

from __future__ import annotations

STANCE_LABELS: tuple[str, ...] = ("cooperative", "pressure", "neutral")
SENTIMENT_LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
EVIDENCE_LABELS: tuple[str, ...] = ("other", "evidence")
TASKS: dict[str, tuple[str, ...]] = {"stance": STANCE_LABELS, "sentiment": SENTIMENT_LABELS}
HEADS: dict[str, tuple[str, ...]] = {**TASKS, "evidence": EVIDENCE_LABELS}
ROLES: tuple[str, ...] = ("agent", "acted-upon", "other")
"""Optional `role` of an annotated party: it acts, another party acts on it (its stance is then
`neutral` unless it acts too, guideline rule 7), or neither plainly. Evaluation reports by role."""
IGNORE_INDEX = -100
"""Label id for a head an example has no label for (a NewsMTSC sentence has no stance)."""


def label_id(task: str, label: str | None) -> int:
    """Column index of `label` within its head, or IGNORE_INDEX when the example lacks that label."""
    if label is None:
        return IGNORE_INDEX
    labels = HEADS[task]
    if label not in labels:
        raise ValueError(f"unknown {task} label {label!r}; expected one of {', '.join(labels)}")
    return labels.index(label)


def task_slices(heads: dict[str, tuple[str, ...]] | None = None) -> dict[str, slice]:
    """Where each head's logits sit in the model's output vector (a model trained before the evidence
    head existed has only the `TASKS` columns: pass `TASKS`)."""
    slices, start = {}, 0
    for task, labels in (heads or HEADS).items():
        slices[task] = slice(start, start + len(labels))
        start += len(labels)
    return slices


def output_width(heads: dict[str, tuple[str, ...]] | None = None) -> int:
    """Number of logits the model emits."""
    return sum(len(labels) for labels in (heads or HEADS).values())
