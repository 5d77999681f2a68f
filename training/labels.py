"""Label sets of the two tasks, in the order of the model's output columns.

The model has one classification layer of six outputs: the first three are the stance head and the
last three the sentiment head (see `modeling.py`). These tuples fix that order everywhere.
"""

from __future__ import annotations

STANCE_LABELS: tuple[str, ...] = ("cooperative", "pressure", "neutral")
SENTIMENT_LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
TASKS: dict[str, tuple[str, ...]] = {"stance": STANCE_LABELS, "sentiment": SENTIMENT_LABELS}
IGNORE_INDEX = -100
"""Label id for a task an example has no label for (a NewsMTSC sentence has no stance)."""


def label_id(task: str, label: str | None) -> int:
    """Column index of `label` within its task, or IGNORE_INDEX when the example lacks that label."""
    if label is None:
        return IGNORE_INDEX
    labels = TASKS[task]
    if label not in labels:
        raise ValueError(f"unknown {task} label {label!r}; expected one of {', '.join(labels)}")
    return labels.index(label)


def task_slices() -> dict[str, slice]:
    """Where each task's logits sit in the model's output vector."""
    slices, start = {}, 0
    for task, labels in TASKS.items():
        slices[task] = slice(start, start + len(labels))
        start += len(labels)
    return slices
