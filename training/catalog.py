"""Finding parties and issues in text, from the alias and issue catalogs kept as data in `datasets/catalog`.

Training, evaluation and serving all locate mentions through this module, so the windows a model is
scored on are the windows it serves. A trained model folder carries a copy of the catalog it was built
with, which makes the folder self-contained.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from training.text import Span

SOURCE_CATALOG_DIR = Path(__file__).resolve().parent.parent / "datasets" / "catalog"
PACKAGED_CATALOG_DIR = Path(__file__).resolve().parent / "catalog_data"
"""Where an installed wheel keeps the catalog (pyproject maps datasets/catalog there)."""
DEFAULT_CATALOG_DIR = SOURCE_CATALOG_DIR if SOURCE_CATALOG_DIR.is_dir() else PACKAGED_CATALOG_DIR
PATTERN_CACHE_SIZE = 512
"""Compiled party patterns kept (least recently used dropped first): party names come from requests, so
an unbounded cache grew with every new name a client sent."""

_STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "to",
    "for",
    "and",
    "or",
    "with",
    "over",
    "its",
    "at",
    "by",
    "from",
    "about",
    "against",
    "into",
    "between",
    "as",
    "s",
}


def _read_tsv(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows


def _split_list(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(";") if item.strip()]


def _alternation(names: list[str]) -> str:
    """A regex alternative of `names`, longest first; a leading "the" also matches "The"."""
    escaped = []
    for name in sorted(set(names), key=len, reverse=True):
        pattern = re.escape(name)
        escaped.append("[Tt]he" + pattern[3:] if name.startswith("the ") else pattern)
    return "|".join(escaped)


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
"""A word, for stemming: the issue's words and the text's are cut the same way."""


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A light stem, enough to match "sanctions" with "sanctioned" and "Korea" with "Korean". Cached, bounded:
    news repeats its words, and every issue lookup stems every distinct word of the text."""
    word = word.lower().removesuffix("'s")
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s", "ns", "n"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=1024)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """Compiled once per keyword list: catalog issues' lists are few and fixed."""
    return re.compile(rf"(?<![\w])(?:{_alternation(list(keywords))})", re.IGNORECASE)


@functools.lru_cache(maxsize=128)
def _pattern_spans(pattern: re.Pattern[str], text: str) -> tuple[Span, ...]:
    """Where `pattern` matches in `text`, cached for the last texts: planning a document scans it for
    every catalog party and issue, then again for each pair's own party and issue, and on a long text
    each scan costs milliseconds. Immutable, so no caller can change what the next one reads."""
    return tuple(match.span() for match in pattern.finditer(text))


@functools.lru_cache(maxsize=8)
def _lowered(text: str) -> str:
    """`text` lower-cased, for the last few texts: a keyword that is not a substring of it cannot match
    (keywords match case-insensitively), which a substring test finds far faster than a regex scan."""
    return text.lower()


@functools.lru_cache(maxsize=8)
def _stem_spans(text: str) -> dict[str, list[Span]]:
    """Each distinct word stem of `text` with the spans of its words. Cached for the last few texts: an
    article's pairs each look their issue up in the same text."""
    found: dict[str, list[Span]] = {}
    for match in _WORD.finditer(text):
        found.setdefault(_stem(match.group()), []).append(match.span())
    return found


def content_words(phrase: str) -> list[str]:
    """Stems of the words of `phrase` that carry its meaning (stopwords dropped)."""
    words = _WORD.findall(phrase)
    return [_stem(word) for word in words if word.lower() not in _STOPWORDS]


@dataclass
class Catalog:
    """Parties (canonical name to aliases) and issues (canonical name to keywords)."""

    parties: dict[str, list[str]]
    party_kinds: dict[str, str]
    issues: dict[str, list[str]]
    _pattern_cache: OrderedDict[str, re.Pattern[str]] = field(default_factory=OrderedDict, repr=False, compare=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, directory: Path | str = DEFAULT_CATALOG_DIR) -> Catalog:
        directory = Path(directory)
        parties, kinds = {}, {}
        for name, kind, *aliases in _read_tsv(directory / "parties.tsv"):
            parties[name] = _split_list(aliases[0]) if aliases else []
            kinds[name] = kind
        issues = {name: _split_list(keywords) for name, keywords in _read_tsv(directory / "issues.tsv")}
        return cls(parties=parties, party_kinds=kinds, issues=issues)

    def canonical_party(self, name: str) -> str:
        """The catalog's name for `name` when it is a known party or alias, else `name` unchanged."""
        if name in self.parties:
            return name
        return self._lowercase_owner.get(name.lower(), name)

    @cached_property
    def _lowercase_owner(self) -> dict[str, str]:
        """Lower-cased name or alias to its party, the first party in catalog order where two share one:
        one dictionary lookup per request instead of a scan of every alias."""
        owners: dict[str, str] = {}
        for party, aliases in self.parties.items():
            for name in (party, *aliases):
                owners.setdefault(name.lower(), party)
        return owners

    def party_names(self, party: str, extra_aliases: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Every surface form that stands for `party`: its name, catalog aliases and the given ones."""
        canonical = self.canonical_party(party)
        return [party, canonical, *self.parties.get(canonical, []), *extra_aliases]

    def _compile_party(self, party: str, extra_aliases: tuple[str, ...]) -> re.Pattern[str]:
        names = [name for name in self.party_names(party, extra_aliases) if name.strip()]
        return re.compile(rf"(?<![\w.])(?:{_alternation(names)})(?:'s)?(?![\w])")

    def _party_pattern(self, party: str, extra_aliases: tuple[str, ...]) -> re.Pattern[str]:
        """The party's pattern, kept in a bounded LRU. With request aliases it is compiled for this call
        only: aliases are per request, and keeping them would grow the process with every request."""
        if extra_aliases:
            return self._compile_party(party, extra_aliases)
        with self._cache_lock:
            pattern = self._pattern_cache.get(party)
            if pattern is not None:
                self._pattern_cache.move_to_end(party)
                return pattern
        pattern = self._compile_party(party, ())
        with self._cache_lock:
            self._pattern_cache[party] = pattern
            while len(self._pattern_cache) > PATTERN_CACHE_SIZE:
                self._pattern_cache.popitem(last=False)
        return pattern

    def find_party(self, text: str, party: str, extra_aliases: list[str] | tuple[str, ...] = ()) -> list[Span]:
        """Character spans where `party` (or anything standing for it) is mentioned."""
        pattern = self._party_pattern(party, tuple(extra_aliases))
        return list(_pattern_spans(pattern, text) if not extra_aliases else (m.span() for m in pattern.finditer(text)))

    @cached_property
    def _all_parties_pattern(self) -> re.Pattern[str]:
        names = [name for party, aliases in self.parties.items() for name in (party, *aliases)]
        return re.compile(rf"(?<![\w.])(?:{_alternation(names)})(?![\w])")

    @cached_property
    def _alias_owner(self) -> dict[str, str]:
        owners = {name: party for party, aliases in self.parties.items() for name in (party, *aliases)}
        owners.update({"The" + name[3:]: party for name, party in list(owners.items()) if name.startswith("the ")})
        return owners

    def detect_parties(self, text: str, extra: dict[str, list[str]] | None = None) -> dict[str, list[Span]]:
        """Every catalog party mentioned in `text` (plus the `extra` parties), with its mention spans."""
        found: dict[str, list[Span]] = {}
        for match in self._all_parties_pattern.finditer(text):
            found.setdefault(self._alias_owner[match.group()], []).append(match.span())
        for party, aliases in (extra or {}).items():
            spans = self.find_party(text, party, aliases)
            if spans:
                found[self.canonical_party(party)] = sorted(set(found.get(self.canonical_party(party), []) + spans))
        return found

    def issue_keywords(self, issue: str) -> list[str]:
        """Keywords that signal `issue`: its catalog keywords when it names a catalog issue."""
        return self._issue_by_word.get(issue.lower().strip(), [])

    @cached_property
    def _issue_by_word(self) -> dict[str, list[str]]:
        """An issue's name or lower-cased keyword to its keywords, the first issue in catalog order winning."""
        index: dict[str, list[str]] = {}
        for name, keywords in self.issues.items():
            for word in (name, *(keyword.lower() for keyword in keywords)):
                index.setdefault(word, keywords)
        return index

    def find_issue(self, text: str, issue: str, extra_aliases: list[str] | tuple[str, ...] = ()) -> list[Span]:
        """Spans where `issue` is mentioned, matched leniently.

        An issue that is a party ("North Korea") is found through the party's aliases ("Pyongyang").
        Otherwise a span is any word sharing a stem with the issue's content words ("tariffs on steel"
        finds "steel" and "tariff"), plus the keywords of a catalog issue of that name.
        """
        if self.canonical_party(issue) in self.parties or extra_aliases:
            return self.find_party(text, issue, extra_aliases)
        spans: list[Span] = self._keyword_spans(text, self.issue_keywords(issue))
        stems = set(content_words(issue))
        for word_stem, word_spans in _stem_spans(text).items():
            if word_stem in stems or any(len(stem) >= 5 and word_stem.startswith(stem) for stem in stems):
                spans += word_spans
        return sorted(set(spans))

    @staticmethod
    def _keyword_spans(text: str, keywords: list[str]) -> list[Span]:
        lowered = _lowered(text)
        if not any(keyword.lower() in lowered for keyword in keywords):  # most issues are absent: no scan
            return []
        return list(_pattern_spans(_keyword_pattern(tuple(keywords)), text))

    def detect_issues(self, text: str) -> dict[str, list[Span]]:
        """Catalog issues whose keywords occur in `text`."""
        found = {}
        for name, keywords in self.issues.items():
            spans = self._keyword_spans(text, keywords)
            if spans:
                found[name] = spans
        return found

    def write(self, directory: Path) -> None:
        """Save this catalog as the two TSV files, so a model folder carries the catalog it used."""
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "parties.tsv").open("w", encoding="utf-8") as handle:
            for party, aliases in self.parties.items():
                handle.write(f"{party}\t{self.party_kinds.get(party, 'party')}\t{'; '.join(aliases)}\n")
        with (directory / "issues.tsv").open("w", encoding="utf-8") as handle:
            for issue, keywords in self.issues.items():
                handle.write(f"{issue}\t{'; '.join(keywords)}\n")
