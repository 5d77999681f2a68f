"""Public corpora, one module each, registered in `MODULES`.

A corpus module declares everything about its corpus in one `CORPUS` (`base.Corpus`): its files with
upstream addresses and pinned SHA-256, its licence, whether the default recipe trains on it, how its
rows become training examples and evaluation items, and its dev portion. `make data`, training,
`stanceline evaluate --data NAME:dev` and the model card read them from here, so adding a corpus is one
new module and one row below. A corpus module is imported when it is asked for.
"""

from __future__ import annotations

import importlib

from training.corpora.base import Corpus

MODULES: dict[str, str] = {
    "newsmtsc": "newsmtsc",
    "un-quadclass": "un_quadclass",
    "plover": "plover",
    "conflibert-cameo": "conflibert_cameo",
    "directed-sentiment": "directed_sentiment",
}
"""Corpus name -> its module in this package."""


def corpus(name: str) -> Corpus:
    """The corpus called `name`; an unknown name is an error that lists the known ones."""
    if name not in MODULES:
        raise ValueError(f"unknown public corpus {name!r}; known: {', '.join(MODULES)}")
    return importlib.import_module(f"training.corpora.{MODULES[name]}").CORPUS


def every_corpus() -> list[Corpus]:
    return [corpus(name) for name in MODULES]


def default_recipe() -> list[str]:
    """Names of the corpora the default recipe trains on (and `make data` brings by default)."""
    return [item.name for item in every_corpus() if item.in_default_recipe]
