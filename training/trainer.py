"""Fine-tuning with the Hugging Face `Trainer`, and writing the self-contained model folder."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import string
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import f1_score
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from training import public
from training.calibration import fit_temperatures
from training.catalog import Catalog
from training.config import TrainConfig
from training.corpora import MODULES
from training.data import count_pairs, file_sha256, load_articles
from training.distill import distillation_loss, teacher_logits
from training.evaluate import evaluate_articles, evaluate_items
from training.examples import Example, WindowOptions, examples_from_articles, label_counts
from training.export import check_backends, describe_check, export_onnx
from training.labels import (
    EVIDENCE_LABELS,
    HEADS,
    IGNORE_INDEX,
    SENTIMENT_LABELS,
    STANCE_LABELS,
    TASKS,
    output_width,
    task_slices,
)
from training.modeling import ModelMeta, marker_pooled_bert_class
from training.packaged import resolve_base_model
from training.predictor import Predictor
from training.windows import MARK_OPEN

logger = logging.getLogger(__name__)
CURRENT_LINK = "current"
MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cpu_supports_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_bf16(setting: str) -> bool:
    """The `TrainConfig.bf16` setting resolved for this machine: "auto" means a GPU or a bf16-capable CPU."""
    if setting != "auto":
        return setting == "yes"
    return torch.cuda.is_available() or cpu_supports_bf16()


def collect_examples(config: TrainConfig, catalog: Catalog) -> tuple[list[Example], dict[str, Any]]:
    """The examples of the whole run (every pass, see `TrainConfig.epochs`) from every configured source,
    and a record of the data for the model card."""
    examples: list[Example] = []
    record: dict[str, Any] = {"files": {}, "public_corpora": {}}
    for path in config.train_files:
        articles = load_articles(path)
        built = examples_from_articles(articles, catalog, Path(path).parent.name, window_options(config))
        if path in config.stance_only_files:
            built = [replace(example, sentiment=IGNORE_INDEX) for example in built]
        built *= config.repeat_train_files * config.epochs
        examples += built
        record["files"][path] = {
            "sha256": file_sha256(path),
            "articles": len(articles),
            "pairs": count_pairs(articles),
            "examples": len(built),
        }
    names = public.auto_corpora(config.data_dir) if config.public_corpora == "auto" else config.public_corpora
    for name in names:
        built, info = public.training_examples(
            name, config.data_dir, config.window_chars, config.max_examples_per_corpus, config.epochs, config.issue_markers
        )
        examples += built
        record["public_corpora"][name] = {**info, "examples": len(built)}
    for name in names if config.unlabelled_per_corpus else []:
        used = record["public_corpora"][name]["rows_used"]
        unlabelled = public.unlabelled_examples(
            name, config.data_dir, config.window_chars, config.unlabelled_per_corpus * config.epochs, used, config.issue_markers
        )
        examples += unlabelled
        record["public_corpora"][name]["unlabelled_examples"] = len(unlabelled)
    if config.public_corpora == "auto" and not names:
        record["public_corpora_note"] = f"no public corpus found in {config.data_dir}/: trained on the bundled corpus alone"
        logger.warning("%s; run `make data` first for the full recipe", record["public_corpora_note"])
    record["label_counts"] = label_counts(examples)
    return examples, record


def to_dataset(examples: list[Example], tokenizer, max_length: int, soft_labels: np.ndarray | None = None):
    """A tokenized `datasets.Dataset`; labels are one id per head (`Example.labels`) per row, and
    `soft_labels` (the teacher's logits, one row per example) become the `teacher_logits` column."""
    columns = {
        "target": [e.target for e in examples],
        "window": [e.window_text for e in examples],
        "labels": [e.labels for e in examples],
    }
    if soft_labels is not None:
        columns["teacher_logits"] = soft_labels.tolist()
    dataset = Dataset.from_dict(columns)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["target"], batch["window"], truncation="only_second", max_length=max_length)

    dataset = dataset.map(tokenize, batched=True, remove_columns=["target", "window"], desc="tokenizing")
    return dataset.map(lambda row: {"length": len(row["input_ids"])})


def two_head_loss(logits, labels, label_smoothing: float = 0.0, weights: dict | None = None):
    """Sum of the heads' cross-entropies (stance, sentiment, evidence), each over the rows that carry
    that label; `weights` optionally gives a head a per-class weight tensor (see `class_weights`)."""
    total = logits.new_zeros(())
    for column, (task, columns) in enumerate(task_slices().items()):
        targets = labels[:, column]
        if (targets != IGNORE_INDEX).any():
            weight = weights[task].to(logits.device) if weights and task in weights else None
            total = total + torch.nn.functional.cross_entropy(
                logits[:, columns].float(),
                targets,
                weight=weight,
                ignore_index=IGNORE_INDEX,
                label_smoothing=label_smoothing,
            )
    return total


def class_weights(examples: list[Example]) -> dict[str, list[float]]:
    """Per-head class weights, sqrt(n / (k * n_class)): a class half as frequent as the average weighs
    about 1.4 times as much. A class with no example gets weight 1."""
    weights = {}
    for task, labels in (("stance", STANCE_LABELS), ("sentiment", SENTIMENT_LABELS)):
        ids = [getattr(example, task) for example in examples if getattr(example, task) != IGNORE_INDEX]
        counts = np.bincount(ids, minlength=len(labels)) if ids else np.zeros(len(labels))
        weights[task] = [float(np.sqrt(len(ids) / (len(labels) * count))) if count else 1.0 for count in counts]
    return weights


def window_metrics(eval_prediction) -> dict[str, float]:
    """Window-level macro-F1 of every head on dev; `score`, which chooses the best pass, is the mean of
    the answer heads' (stance and sentiment)."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    result = {}
    for column, (task, columns) in enumerate(task_slices().items()):
        mask = labels[:, column] != IGNORE_INDEX
        if mask.any():
            predicted = logits[mask][:, columns].argmax(axis=1)
            result[f"{task}_macro_f1"] = float(f1_score(labels[mask, column], predicted, average="macro"))
    answers = [value for key, value in result.items() if key.removesuffix("_macro_f1") in TASKS]
    result["score"] = float(np.mean(answers)) if answers else 0.0
    return result


def freeze_lower_layers(model, layers: int, embeddings: bool) -> None:
    """Keep the word embeddings (`embeddings`), or all embeddings and the `layers` lowest encoder layers,
    fixed during fine-tuning."""
    encoder = model.base_model
    if layers > len(encoder.encoder.layer):
        raise ValueError(f"frozen_layers {layers} exceeds the encoder's {len(encoder.encoder.layer)} layers")
    if embeddings and not layers:
        model.get_input_embeddings().weight.requires_grad_(False)
    frozen = [encoder.embeddings, *encoder.encoder.layer[:layers]] if layers else []
    for module in frozen:
        module.requires_grad_(False)


class TwoHeadTrainer(Trainer):
    """The Hugging Face `Trainer` with `two_head_loss`: one cross-entropy per head, each over its labelled
    rows; with a teacher's logits in the batch, mixed with the distillation loss (`distill.py`)."""

    def __init__(
        self,
        *args,
        label_smoothing: float = 0.0,
        loss_weights: dict | None = None,
        distill_weight: float = 0.0,
        distill_temperature: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.label_smoothing = label_smoothing
        self.loss_weights = loss_weights
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        inputs.pop("length", None)  # kept for length grouping, not a model input
        soft_labels = inputs.pop("teacher_logits", None)
        outputs = model(**inputs)
        loss = two_head_loss(outputs.logits, labels, self.label_smoothing, self.loss_weights)
        if soft_labels is not None:
            distilled = distillation_loss(outputs.logits, soft_labels, self.distill_temperature)
            loss = (1 - self.distill_weight) * loss + self.distill_weight * distilled
        return (loss, outputs) if return_outputs else loss


@dataclass
class Run:
    """What one training run carries from phase to phase."""

    config: TrainConfig
    catalog: Catalog
    examples: list[Example]
    record: dict[str, Any]
    """The data record written to `data.json` and the model card; phases add to it."""
    dev_articles: list[dict] = field(default_factory=list)
    dev_examples: list[Example] = field(default_factory=list)
    soft_labels: np.ndarray | None = None
    """The teacher's logits for `examples`, row for row, when the run distils."""


def process_group() -> tuple[int, int]:
    """(rank, number of processes): set by `torchrun`, else (0, 1)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def train(config: TrainConfig) -> Path | None:
    """Run one training and return the finished model folder (also pointed to by `current`).

    Under `torchrun` every process trains on its share of each batch (the `Trainer`'s own distributed
    data parallel: gloo on CPU, nccl on GPUs); only rank 0 writes the folder and runs the post-training
    checks, and the other ranks return None."""
    rank, processes = process_group()
    if processes > 1 and not config.run_name:
        raise ValueError("set run_name when training with several processes, so that they agree on one folder")
    if config.batch_size % processes:
        raise ValueError(f"batch_size {config.batch_size} must divide evenly over the {processes} processes")
    set_seed(config.seed)
    started = time.time()
    run = collect_run_data(config)
    run.record["processes"] = processes
    tokenizer, model = build_model(config)
    final_folder, work = claim_folders(config, clear=rank == 0 and not config.resume)
    if rank == 0:
        record_settings(config, work)
    trainer = fit(run, model, tokenizer, work)
    if rank != 0:
        return None
    run.record["training_seconds"] = round(time.time() - started, 1)
    meta = write_model_folder(run, trainer, tokenizer, work, final_folder.name)
    post_training_checks(run, meta, work)
    os.replace(work, final_folder)
    if config.make_current:
        point_current(final_folder.parent, final_folder.name)
    logger.info("model written to %s in %.0f s", final_folder, run.record["training_seconds"])
    return final_folder


def collect_run_data(config: TrainConfig) -> Run:
    """Training examples of every pass, the dev split, and the data record."""
    catalog = Catalog.load()
    examples, record = collect_examples(config, catalog)
    run = Run(config, catalog, examples, record)
    if config.class_weighting == "balanced":
        record["class_weights"] = class_weights(examples)
    if config.dev_file:
        run.dev_articles = load_articles(config.dev_file)
        dev_options = replace(window_options(config), served_windows=False)
        run.dev_examples = examples_from_articles(run.dev_articles, catalog, "dev", dev_options)
        record["dev"] = {config.dev_file: {"sha256": file_sha256(config.dev_file), "articles": len(run.dev_articles)}}
    if config.teacher:
        run.soft_labels, record["teacher"] = soft_labels(config, examples)
    logger.info(
        "training on %d examples in %d passes of %d steps (%s)",
        len(examples),
        config.epochs,
        steps_per_pass(config, len(examples)),
        record["label_counts"],
    )
    return run


def soft_labels(config: TrainConfig, examples: list[Example]) -> tuple[np.ndarray, dict[str, Any]]:
    """The teacher's logits for each example; rows the teacher does not read (public windows without
    `distill_public`) are NaN, which the distillation loss skips. Under several processes rank 0 reads
    the teacher and the others wait for its cache."""
    public_names = set(MODULES)
    read = [i for i, example in enumerate(examples) if config.distill_public or example.source not in public_names]
    cache = Path(config.data_dir) / "teacher-cache"
    logits, record = teacher_logits(config.teacher, [examples[i] for i in read], cache, compute=process_group()[0] == 0)
    result = np.full((len(examples), output_width(HEADS)), np.nan, dtype=np.float32)
    result[read] = logits
    record["rows"] = len(read)
    return result, record


def window_options(config: TrainConfig) -> WindowOptions:
    return WindowOptions(config.window_chars, config.served_windows, config.evidence_windows, config.issue_markers)


def steps_per_pass(config: TrainConfig, examples: int) -> int:
    return max(1, math.ceil(examples / config.batch_size / config.epochs))


def build_model(config: TrainConfig):
    """The tokenizer and the encoder with its heads (stock [CLS] pooling or marker pooling), lower layers frozen."""
    base = resolve_base_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    num_labels = output_width(HEADS)
    if config.pooling == "marker":
        model_config = AutoConfig.from_pretrained(base, num_labels=num_labels)
        model_config.marker_token_id = tokenizer.convert_tokens_to_ids(MARK_OPEN)
        model = marker_pooled_bert_class().from_pretrained(base, config=model_config, ignore_mismatched_sizes=True)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=num_labels, ignore_mismatched_sizes=True)
    freeze_lower_layers(model, config.frozen_layers, config.freeze_embeddings)
    model.config.id2label = {i: f"{task}:{label}" for i, (task, label) in enumerate(_columns())}
    model.config.label2id = {name: i for i, name in model.config.id2label.items()}
    return tokenizer, model


def claim_folders(config: TrainConfig, clear: bool = True) -> tuple[Path, Path]:
    """The final model folder (which must not exist yet) and the temporary one the run writes into: the
    final name appears only when the folder is complete. `clear` empties a leftover temporary folder
    (only one process of a distributed run does)."""
    output_root = Path(config.output_dir)
    output_root.mkdir(parents=True, exist_ok=True)
    run_name = config.run_name or datetime.now(UTC).strftime("stanceline-%Y%m%d-%H%M%S")
    final_folder = output_root / run_name
    if final_folder.exists():
        raise FileExistsError(f"{final_folder} already exists: choose another run_name")
    work = output_root / f".tmp-{run_name}"
    if clear:
        shutil.rmtree(work, ignore_errors=True)
    return final_folder, work


def record_settings(config: TrainConfig, work: Path) -> None:
    """Write the run's settings into its temporary folder; a resumed run must have the same ones, since a
    checkpoint continued under other settings would be neither recipe."""
    path = work / "training_config.json"
    settings = json.dumps(config.to_dict(), indent=2) + "\n"
    if config.resume and path.exists() and path.read_text(encoding="utf-8") != settings:
        raise ValueError(
            f"{work} holds an interrupted run with other settings: train with the same settings to resume it, "
            "or remove the folder to start over"
        )
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(settings, encoding="utf-8")


def last_checkpoint(work: Path) -> str | None:
    """The newest full checkpoint an interrupted run left in its temporary folder, if any."""
    checkpoints = sorted((work / "checkpoints").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1]))
    complete = [path for path in checkpoints if (path / "trainer_state.json").exists() and (path / "optimizer.pt").exists()]
    return str(complete[-1]) if complete else None


def fit(run: Run, model, tokenizer, work: Path) -> TwoHeadTrainer:
    """Fine-tune: one sweep over every pass's examples, dev scored after each pass and the best kept."""
    config = run.config
    bf16 = use_bf16(config.bf16)
    run.record["bf16"] = bf16
    per_pass = steps_per_pass(config, len(run.examples))
    arguments = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=1,  # one sweep over every pass's examples (see `collect_examples`)
        learning_rate=config.learning_rate,
        # `batch_size` is the batch of one optimisation step over all processes, so the learning rate and
        # the steps per pass do not change with the number of processes.
        per_device_train_batch_size=config.batch_size // process_group()[1],
        ddp_backend=("nccl" if torch.cuda.is_available() else "gloo") if process_group()[1] > 1 else None,
        ddp_find_unused_parameters=False,  # every trainable weight is used in every step
        per_device_eval_batch_size=64,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="steps" if run.dev_examples else "no",
        save_strategy="steps" if run.dev_examples else "no",
        eval_steps=per_pass,
        save_steps=per_pass,
        save_total_limit=1,
        load_best_model_at_end=bool(run.dev_examples),
        metric_for_best_model="score",
        greater_is_better=True,
        save_only_model=not config.resume,
        remove_unused_columns=False,  # `teacher_logits` is not a model input; `compute_loss` takes the extra columns out
        train_sampling_strategy="group_by_length",
        logging_steps=20,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    weights = run.record.get("class_weights")
    trainer = TwoHeadTrainer(
        model=model,
        args=arguments,
        train_dataset=to_dataset(run.examples, tokenizer, config.max_length, run.soft_labels),
        eval_dataset=to_dataset(run.dev_examples, tokenizer, config.max_length) if run.dev_examples else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=window_metrics,
        label_smoothing=config.label_smoothing,
        loss_weights={task: torch.tensor(values) for task, values in weights.items()} if weights else None,
        distill_weight=config.distill_weight,
        distill_temperature=config.distill_temperature,
    )
    resume_from = last_checkpoint(work) if config.resume else None
    if resume_from:
        logger.info("resuming from %s", resume_from)
        run.record["resumed_from"] = Path(resume_from).name
    trainer.train(resume_from_checkpoint=resume_from)
    return trainer


def write_model_folder(run: Run, trainer: TwoHeadTrainer, tokenizer, work: Path, name: str) -> ModelMeta:
    """Weights, tokenizer, `stanceline.json`, the catalog, calibration and the training config into `work`."""
    config = run.config
    trainer.save_model(str(work))
    tokenizer.save_pretrained(str(work))
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    meta = ModelMeta(
        name=name,
        base_model=config.base_model,
        max_length=config.max_length,
        window_chars=config.window_chars,
        evidence_labels=list(EVIDENCE_LABELS),
        issue_markers=config.issue_markers,
        profile=config.profile,
        window_pooling=config.window_pooling,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    meta.save(work)
    run.catalog.write(work / "catalog")
    if run.dev_articles and config.calibrate:
        meta.temperatures = fit_temperatures(work, run.dev_articles)
        run.record["temperatures"] = meta.temperatures
        meta.save(work)
    (work / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    run.record["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    (work / "data.json").write_text(json.dumps(run.record, indent=2) + "\n")
    return meta


def post_training_checks(run: Run, meta: ModelMeta, work: Path) -> None:
    """The ONNX exports and their check, held-out evaluation, and the model card that reports them."""
    config = run.config
    if config.export_onnx:
        export_onnx(work)
        if run.dev_articles:
            record = check_backends(work, run.dev_articles, config.dev_file, config.data_dir)
            run.record["backend_check"] = describe_check(record)
            logger.info(run.record["backend_check"])
    corpora = list(run.record["public_corpora"])
    metrics = evaluate_held_out(work, config, run.dev_articles, corpora) if config.evaluate_dev else {}
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_model_card(work, meta, config, run.record, metrics)


def evaluate_held_out(folder: Path, config: TrainConfig, dev_articles: list[dict], corpora: list[str]) -> dict[str, Any]:
    """Held-out figures for the model card, through the same predictor as serving: the bundled dev
    file, and the dev portion of every public corpus the run trained on (never trained on itself)."""
    predictor = Predictor.from_folder(folder)
    metrics: dict[str, Any] = {}
    if dev_articles:
        metrics["dev"] = evaluate_articles(predictor, dev_articles, bootstrap=200)
    for name in corpora:
        items = public.eval_items(f"{name}:dev", config.data_dir)
        if items:
            metrics[f"{name}:dev"] = evaluate_items(predictor, items, bootstrap=200)[0]
    return metrics


def _columns() -> list[tuple[str, str]]:
    return [(task, label) for task, labels in HEADS.items() for label in labels]


def point_current(output_root: Path, run_name: str) -> None:
    """Atomically repoint `output_root/current` at `run_name`."""
    link = output_root / CURRENT_LINK
    temporary = output_root / f".{CURRENT_LINK}.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(run_name, target_is_directory=True)
    os.replace(temporary, link)


def describe_teacher(record: dict | None, config: TrainConfig) -> str:
    """The model card's line about distillation."""
    if not record:
        return "none (trained on the gold labels alone)"
    return (
        f"`{record['teacher']}` ({record['base_model']}, fingerprint `{record['fingerprint']}`), weight "
        f"{config.distill_weight}, temperature {config.distill_temperature}, over {record['windows']} distinct windows"
        + ("" if config.distill_public else " of the train files (public corpora: gold labels only)")
    )


def write_model_card(folder: Path, meta: ModelMeta, config: TrainConfig, data: dict, metrics: dict) -> None:
    """`README.md` of the model folder: `model_card_template.md` filled with the run's facts and figures."""
    rows = [
        f"| `{path}` | `{info['sha256'][:12]}` | {info['articles']} articles, {info['pairs']} pairs | {info['examples']} |"
        for path, info in data["files"].items()
    ]
    rows += [
        f"| {name} ({info.get('version', '')}) | `{info.get('sha256', '')[:12]}` | {info.get('rows_used', '')} of {info.get('rows', '')} | {info['examples']} |"
        for name, info in data["public_corpora"].items()
    ]
    metric_lines = []
    for split, result in metrics.items():
        for task in ("stance", "sentiment"):
            if block := result.get(task):
                low, high = block["macro_f1_ci95"]
                metric_lines.append(
                    f"- {'bundled dev' if split == 'dev' else split} {task}: macro-F1 {block['macro_f1']:.3f} (95% CI {low:.3f}-{high:.3f}), accuracy {block['accuracy']:.3f}, {result['data']['pairs']} pairs"
                )
    card = MODEL_CARD_TEMPLATE.read_text(encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    filled = string.Template(card).substitute(
        name=meta.name,
        base_model=meta.base_model,
        created=meta.created,
        training_seconds=f"{data['training_seconds']:.0f}",
        device=data["device"],
        bf16=data["bf16"],
        pair_template=tokenizer.decode(tokenizer("target", "window")["input_ids"]),
        max_length=meta.max_length,
        window_chars=meta.window_chars,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        seed=config.seed,
        teacher=describe_teacher(data.get("teacher"), config),
        data_rows="\n".join(rows),
        data_note=f"\n{data['public_corpora_note']}\n" if data.get("public_corpora_note") else "",
        label_counts=json.dumps(data["label_counts"]),
        backend_check=data.get(
            "backend_check", data.get("int8_check", "No ONNX copy was exported (`make export` writes and checks one).")
        ),
        metric_lines="\n".join(metric_lines) or "No dev evaluation was run.",
    )
    (folder / "README.md").write_text(filled, encoding="utf-8")
