"""Public corpora: fetching them at `make data` time, and the entry points training and evaluation use.

Nothing from these corpora is committed. `fetch` downloads each file from its upstream address (or
copies it from an offline mirror folder, `STANCELINE_DATA_MIRROR`, taken as it is since a mirror may
hold a subset) into `data/<corpus>/` and records where it came from and its SHA-256 in
`data/SOURCES.json`. Each corpus is an adapter in `training.corpora` (files, licence, converters, dev
portion); this module only walks them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.corpora import MODULES, corpus, default_recipe
from training.corpora.base import MIRROR_SETTING
from training.examples import Example
from training.files import replaced_atomically, write_lines_atomically
from training.items import EvalItem
from training.labels import IGNORE_INDEX


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(data_dir: Path | str = "data", mirror: Path | str | None = None, names: list[str] | None = None) -> dict[str, Any]:
    """Bring the files of the corpora `names` (default: the default recipe's) into `data_dir`, from
    `mirror` when given, else from upstream, and record each file's origin and SHA-256 in SOURCES.json.

    Each file is written to a temporary name and renamed into place only once complete (and, from
    upstream, once its checksum matches), so an interrupted fetch never leaves a partial corpus."""
    data_dir = Path(data_dir)
    mirror = Path(mirror) if mirror else (Path(os.environ[MIRROR_SETTING]) if os.environ.get(MIRROR_SETTING) else None)
    sources_file = data_dir / "SOURCES.json"
    record: dict[str, Any] = json.loads(sources_file.read_text(encoding="utf-8")) if sources_file.exists() else {}
    for name in default_recipe() if names is None else names:
        for source in corpus(name).sources:
            key, target = f"{name}/{source.name}", data_dir / name / source.name
            origin = mirror / name / source.name if mirror is not None else None
            if origin is not None and not origin.exists():
                record[key] = {"status": f"not in mirror {mirror}"}
                continue
            with replaced_atomically(target) as partial:
                if origin is not None:
                    shutil.copyfile(origin, partial)
                else:
                    with urllib.request.urlopen(source.url, timeout=60) as response, partial.open("wb") as out:
                        shutil.copyfileobj(response, out)
                    if source.sha256 and sha256_of(partial) != source.sha256:
                        raise ValueError(f"{source.url}: checksum {sha256_of(partial)} differs from pinned {source.sha256}")
                digest = sha256_of(partial)
                partial.chmod(0o644)
            record[key] = {
                "origin": f"mirror:{origin}" if origin is not None else source.url,
                "sha256": digest,
                "matches_pinned": (digest == source.sha256) if source.sha256 else None,
            }
    write_lines_atomically(sources_file, [json.dumps(record, indent=2) + "\n"])
    return record


def available(data_dir: Path | str) -> list[str]:
    """Public corpora present in `data_dir` (what `make data` brought in), in registry order."""
    return [name for name in MODULES if corpus(name).path(Path(data_dir), "train").exists()]


def auto_corpora(data_dir: Path | str) -> list[str]:
    """What `public_corpora = "auto"` trains on: the default recipe's corpora that are present."""
    return [name for name in available(data_dir) if name in default_recipe()]


def rows_for_run(rows: list, max_examples_per_corpus: int, passes: int = 1) -> list:
    """The rows a corpus contributes to a run of `passes` passes, `max_examples_per_corpus` rows a pass
    (0: all rows).

    Rows are taken in file order and wrap around only after the last one, so a corpus larger than
    `max_examples_per_corpus` brings different rows to each pass instead of the same rows again: more
    distinct text for the same training time."""
    if not rows:
        return []
    per_pass = min(max_examples_per_corpus or len(rows), len(rows))
    return [rows[index % len(rows)] for index in range(per_pass * passes)]


def training_examples(
    name: str,
    data_dir: Path | str,
    window_chars: int,
    max_examples_per_corpus: int = 0,
    passes: int = 1,
    issue_markers: bool = False,
) -> tuple[list[Example], dict]:
    """Examples of a public corpus's train portion for a whole run (see `rows_for_run`), and a record of
    the file for the model card."""
    source = corpus(name)
    path, rows = source.rows(data_dir, "train")
    taken = rows_for_run(rows, max_examples_per_corpus, passes)
    examples = source.examples(taken, window_chars, issue_markers)
    distinct = min(len(rows), len(taken))  # rows wrap around only after the last one
    info = {"file": str(path), "sha256": sha256_of(path), "rows": len(rows), "rows_used": distinct, "version": _version(path)}
    return examples, info


def unlabelled_examples(
    name: str,
    data_dir: Path | str,
    window_chars: int,
    count: int,
    after: int,
    issue_markers: bool = False,
) -> list[Example]:
    """Up to `count` rows of a public corpus's train portion that come after the first `after` (those a run
    trains on), read as windows with every label removed: material for learning from a teacher alone."""
    source = corpus(name)
    _, rows = source.rows(data_dir, "train")
    examples = source.examples(rows[after : after + count], window_chars, issue_markers)
    return [replace(example, stance=IGNORE_INDEX, sentiment=IGNORE_INDEX, evidence=IGNORE_INDEX) for example in examples]


def _version(path: Path) -> str:
    sources = path.parent.parent / "SOURCES.json"
    if sources.exists():
        record = json.loads(sources.read_text()).get(f"{path.parent.name}/{path.name}", {})
        return record.get("origin", "")
    return ""


def eval_items(spec: str, data_dir: Path | str = "data") -> list[EvalItem]:
    """Evaluation items for `corpus:split` (newsmtsc:dev, un-quadclass:dev, plover:dev)."""
    name, _, split = spec.partition(":")
    source = corpus(name)
    return source.items(source.rows(data_dir, split or "dev")[1])
