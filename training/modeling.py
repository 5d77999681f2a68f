"""The model: one encoder, two heads (stance and sentiment), and its self-contained folder.

Why one model with two heads rather than two models: stance and sentiment are read from the same
window, so one encoder pass answers both, halving serving cost, and the shared encoder learns from
both kinds of label (NewsMTSC brings sentiment only, QuadClass stance only). The two heads are two
slices of one linear layer on the pooled output (`labels.task_slices`), which is the same function as
two separate heads. By default (`pooling = "cls"`) the checkpoint is a plain
`AutoModelForSequenceClassification`: it saves, loads and exports to ONNX with stock tooling;
`pooling = "marker"` gives the heads the party's marked mentions too (`MarkerPooledBert`), loaded
through `load_sequence_model`. Each head has its own softmax and loss; a task an example
has no label for is ignored (`IGNORE_INDEX`).

A model folder holds: the weights and tokenizer (Hugging Face layout), `stanceline.json` (labels, input
settings, base model), `training_config.json`, `data.json` (hashes of the data it saw), `metrics.json`
(dev metrics), `catalog/` (the alias and issue catalogs it was built with) and a model card `README.md`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.labels import EVIDENCE_LABELS, HEADS, SENTIMENT_LABELS, STANCE_LABELS, TASKS, task_slices

META_FILE = "stanceline.json"
FORMAT_VERSION = 1


WINDOW_POOLINGS = ("geometric", "mean")
"""How the predictor turns a pair's window probabilities into one distribution. "geometric": windows
weighted by their evidence probability cubed (`predictor.EVIDENCE_POWER`), then the weighted geometric mean, renormalised: a
log-linear pool, in which a label that the windows showing the stance rule out stays unlikely, so the
windows that only mention the party do not pull a clear stance towards `neutral`. "mean": windows
weighted by their evidence probability, then the weighted arithmetic mean (the pooling until
2026-12-07). reports/EXPERIMENTS.md, "Pooling", has both on the real-news dev set."""


@dataclass
class ModelMeta:
    """What serving needs to know about a trained model, saved as `stanceline.json` beside the weights."""

    name: str
    base_model: str
    max_length: int
    window_chars: int
    stance_labels: list[str] = field(default_factory=lambda: list(STANCE_LABELS))
    sentiment_labels: list[str] = field(default_factory=lambda: list(SENTIMENT_LABELS))
    evidence_labels: list[str] = field(default_factory=list)
    """Empty for a model without the evidence head (trained before it existed): its pairs are read in
    reading order and averaged."""
    temperatures: dict[str, float] = field(default_factory=dict)
    """Per-head softmax temperature fitted on dev (`calibration.fit_temperatures`); 1 where absent."""
    issue_markers: bool = False
    """Whether the model was trained with the issue's mentions braced in its windows (`windows.ISSUE_OPEN`);
    serving marks them only for such a model, so older models get the input they were trained on."""
    profile: str = ""
    """The recipe's profile ("fast", "accurate", "custom"; empty for models trained before profiles)."""
    window_pooling: str = "mean"
    """How the predictor pools a pair's windows into its answer (`WINDOW_POOLINGS`); `temperatures` were
    fitted under it. Folders written before pooling was a choice pool by the mean, as they were fitted;
    `stanceline calibrate --pooling geometric` refits one for the geometric pooling."""
    format_version: int = FORMAT_VERSION
    created: str = ""

    @property
    def heads(self) -> dict[str, tuple[str, ...]]:
        """The heads this model's output columns hold, in order."""
        return HEADS if self.evidence_labels else TASKS

    def save(self, folder: Path) -> None:
        """Write `stanceline.json` whole or not at all: a folder being served is never left half-written."""
        path = folder / META_FILE
        partial = path.with_name(f".{META_FILE}.partial")
        partial.write_text(json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    @classmethod
    def load(cls, folder: Path) -> ModelMeta:
        path = folder / META_FILE
        if not path.exists():
            raise FileNotFoundError(f"{folder} is not a Stanceline model folder: {META_FILE} is missing")
        meta = cls(**json.loads(path.read_text(encoding="utf-8")))
        if (tuple(meta.stance_labels), tuple(meta.sentiment_labels)) != (STANCE_LABELS, SENTIMENT_LABELS) or (
            meta.evidence_labels and tuple(meta.evidence_labels) != EVIDENCE_LABELS
        ):
            raise ValueError(f"{folder}: label maps {meta.stance_labels}/{meta.sentiment_labels} differ from this code's")
        return meta


def split_probabilities(
    logits: np.ndarray, heads: dict[str, tuple[str, ...]] | None = None, temperatures: dict[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Per-head probabilities (softmax within each head, each head's logits divided by its fitted
    temperature) from the model's logits."""
    result = {}
    for task, columns in task_slices(heads).items():
        head = logits[:, columns].astype(np.float64) / (temperatures or {}).get(task, 1.0)
        head = np.exp(head - head.max(axis=1, keepdims=True))
        result[task] = head / head.sum(axis=1, keepdims=True)
    return result


@functools.cache
def marker_pooled_bert_class():
    """`MarkerPooledBert`, defined on first use so that importing this module does not import torch."""
    import torch
    from torch import nn
    from transformers import BertModel, BertPreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MarkerPooledBert(BertPreTrainedModel):
        """BERT whose heads read two vectors side by side: the mean of all tokens (how the base
        sentence encoder was trained to summarise text) and the mean of the tokens that open the
        party's bracketed mentions in the window (`windows.mark_mentions`), in the spirit of the
        entity-start pooling of Baldini Soares et al. (2019). A window without a mention (`overall`,
        an unnamed speaker) uses the all-token mean in both places. The marker is found from the token
        ids alone, so the ONNX graph takes the same three inputs as the stock model."""

        def __init__(self, config) -> None:
            super().__init__(config)
            self.bert = BertModel(config, add_pooling_layer=False)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **_):
            # `labels` is named so the Trainer keeps that column; the loss is `trainer.two_head_loss`.
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            in_window = token_type_ids == 1 if token_type_ids is not None else torch.ones_like(input_ids, dtype=torch.bool)
            markers = ((input_ids == self.config.marker_token_id) & in_window).unsqueeze(-1).to(hidden.dtype)
            count = markers.sum(1)
            at_markers = (hidden * markers).sum(1) / count.clamp(min=1.0)
            at_markers = torch.where(count > 0, at_markers, mean)
            logits = self.classifier(self.dropout(torch.cat([mean, at_markers], dim=-1)))
            return SequenceClassifierOutput(logits=logits) if self.config.use_return_dict else (logits,)

    return MarkerPooledBert


def load_sequence_model(folder: Path | str, dtype=None):
    """The trained torch model in `folder`: a stock sequence classifier or a `MarkerPooledBert`,
    as its `config.json` says."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(folder)
    if "MarkerPooledBert" in (config.architectures or []):
        return marker_pooled_bert_class().from_pretrained(folder, dtype=dtype)
    return AutoModelForSequenceClassification.from_pretrained(folder, dtype=dtype)


def describe(folder: Path) -> dict[str, Any]:
    """The model card facts of a folder: meta, training data and metrics, for `/v1/model` and reports."""
    info: dict[str, Any] = {"meta": ModelMeta.load(folder).__dict__}
    for name in ("data", "metrics", "training_config", "backends"):
        path = folder / f"{name}.json"
        info[name] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    return info
