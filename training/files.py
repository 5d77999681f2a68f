"""Writing files so that a reader never sees half of one: write beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends, removed when
    it raises, so a crash leaves the old file or none, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_lines_atomically(path: Path | str, lines: list[str]) -> None:
    """Write `lines` (each with its own newline) to `path` in one step (see `replaced_atomically`)."""
    with replaced_atomically(path) as temporary, temporary.open("w", encoding="utf-8") as stream:
        stream.writelines(lines)
