"""The one place that turns (party, issue, text) into model input.

Articles are longer than the model's window, so each (party, issue) pair is read through a few short
windows: a sentence that holds the evidence (in training) or where party and issue meet (in serving),
widened with its neighbouring sentences up to `max_chars`. Each window becomes a text pair:

    ("Japan on North Korea", "... [Abe] called for maximum pressure on {Pyongyang} while Putin urged ...")

The first segment names the target; the second is the window with the party's mentions bracketed, so
the model knows which of several parties in one sentence it is asked about, and (for models trained
with `issue_markers`) the issue's mentions braced, so it sees who or what the party acts on. Training,
evaluation and serving all call `pair_inputs` / `window_inputs` / `overall_inputs`, so what is evaluated
is what is served.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from training.text import Span, split_sentences

MARK_OPEN, MARK_CLOSE = "[", "]"
ISSUE_OPEN, ISSUE_CLOSE = "{", "}"
_UNMARK = str.maketrans({MARK_OPEN: "(", MARK_CLOSE: ")", ISSUE_OPEN: "(", ISSUE_CLOSE: ")"})
"""Brackets and braces already in the text ("[sic]", "[the minister]") become parentheses, so the only
brackets and braces the model sees are the mention markers."""
DEFAULT_MAX_CHARS = 200
MAX_WINDOWS_PER_PAIR = 4
"""Most windows one pair is read through. A pair whose party and issue meet in more sentences than
this is read through an even spread of them (the first, the last and between), so a decisive sentence
late in an article counts as much as the lead; the evidence head then weighs what was read."""
MAX_WINDOWS_IN_READING_ORDER = 2
"""Windows per pair for a model without the evidence head: the first ones in reading order, averaged."""
MAX_OVERALL_WINDOWS = 3
"""`overall` reads the lead of the text: its first chunks."""
OVERALL_TARGET = "overall"


@dataclass(frozen=True)
class ModelInput:
    """One window of an article, encoded for the model, with where it came from."""

    target: str
    window_text: str
    window: Span
    anchor: Span
    """The sentence that caused this window: reported to users as the evidence."""


def describe_target(party: str | None, issue: str | None) -> str:
    """The first input segment: who the prediction is about, and on what."""
    if party and issue:
        return f"{party} on {issue}"
    if party:
        return party
    if issue:
        return f"on {issue}"
    return OVERALL_TARGET


def mark_mentions(text: str, window: Span, mentions: list[Span], issue_mentions: list[Span] = ()) -> str:
    """The window's text with every party mention inside it wrapped in brackets and every issue mention
    in braces (and any bracket or brace of the text itself turned into a parenthesis, see `_UNMARK`).
    Where a party and an issue mention overlap, the party's marker wins."""
    start, end = window

    def inside(spans, opening: str, closing: str) -> set[tuple[int, int, str, str]]:
        return {(max(s, start), min(e, end), opening, closing) for s, e in spans if s < end and e > start}

    marks = sorted(inside(mentions, MARK_OPEN, MARK_CLOSE)) + sorted(inside(issue_mentions, ISSUE_OPEN, ISSUE_CLOSE))
    taken: list[tuple[int, int, str, str]] = []
    for mark in marks:  # party mentions first, so an overlapping issue mention is dropped
        if all(mark[1] <= other[0] or mark[0] >= other[1] for other in taken):
            taken.append(mark)
    pieces, cursor = [], start
    for mention_start, mention_end, opening, closing in sorted(taken):
        pieces += [
            text[cursor:mention_start].translate(_UNMARK),
            opening,
            text[mention_start:mention_end].translate(_UNMARK),
            closing,
        ]
        cursor = mention_end
    pieces.append(text[cursor:end].translate(_UNMARK))
    return "".join(pieces)


def sentence_indices(sentences: list[Span], span: Span) -> list[int]:
    """Indices of the sentences (sorted, non-overlapping) that overlap `span`, found by bisection: a long
    text with many pairs calls this once per mention, so a scan over every sentence would be quadratic."""
    index = bisect.bisect_right(sentences, span[0], key=lambda sentence: sentence[1])
    found = []
    while index < len(sentences) and sentences[index][0] < span[1]:
        if sentences[index][1] > span[0]:
            found.append(index)
        index += 1
    return found


def sentences_of(sentences: list[Span], spans: list[Span]) -> set[int]:
    """Indices of the sentences overlapping any of `spans`, as `sentence_indices` finds them, with the
    sentence ends listed once for all spans: a long text's pair has thousands of mentions."""
    ends = [end for _, end in sentences]
    found: set[int] = set()
    for start, stop in spans:
        index = bisect.bisect_right(ends, start)
        while index < len(sentences) and sentences[index][0] < stop:
            if sentences[index][1] > start:
                found.add(index)
            index += 1
    return found


def widen(sentences: list[Span], first: int, last: int, max_chars: int) -> Span:
    """Grow the sentence range [first, last] with neighbours, alternating after then before, while it fits."""
    before, after = first, last
    grew = True
    while grew:
        grew = False
        for new_before, new_after in ((before, after + 1), (before - 1, after)):
            inside = new_before >= 0 and new_after < len(sentences)
            if inside and sentences[new_after][1] - sentences[new_before][0] <= max_chars:
                before, after, grew = new_before, new_after, True
    return sentences[before][0], sentences[after][1]


def windows_around(text: str, anchors: list[Span], max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[Span, Span]]:
    """(window, anchor sentence) for each anchor span; the whole text when it fits in one window."""
    sentences = split_sentences(text) or [(0, len(text))]
    if len(text) <= max_chars:
        whole = (sentences[0][0], sentences[-1][1])
        return [(whole, _anchor_span(sentences, anchors[0]) if anchors else whole)]
    result: dict[Span, Span] = {}
    for anchor in anchors:
        indices = sentence_indices(sentences, anchor)
        if not indices:
            continue
        anchor_span = (sentences[indices[0]][0], sentences[indices[-1]][1])
        window = widen(sentences, indices[0], indices[-1], max_chars)
        result.setdefault(window, anchor_span)
    return list(result.items())


def _anchor_span(sentences: list[Span], anchor: Span) -> Span:
    indices = sentence_indices(sentences, anchor) or [0, len(sentences) - 1]
    return sentences[indices[0]][0], sentences[indices[-1]][1]


def chunk_windows(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[Span, Span]]:
    """Consecutive sentence groups covering the whole text, each at most `max_chars` (for `overall`)."""
    sentences = split_sentences(text) or [(0, len(text))]
    windows, first = [], 0
    for index in range(1, len(sentences) + 1):
        if index == len(sentences) or sentences[index][1] - sentences[first][0] > max_chars:
            span = (sentences[first][0], sentences[index - 1][1])
            windows.append((span, span))
            first = index
    return windows


def meeting_points(sentences: list[Span], party_spans: list[Span], issue_spans: list[Span]) -> list[Span]:
    """Where a pair's evidence is likely: sentences holding both party and issue, else party and issue
    in neighbouring sentences, else the party's sentences, else the issue's. Empty when neither occurs."""
    party_sentences = sentences_of(sentences, party_spans)
    issue_sentences = sentences_of(sentences, issue_spans)
    both = sorted(party_sentences & issue_sentences)
    if both:
        return [sentences[i] for i in both]
    neighbours = sorted({i for i in party_sentences if i - 1 in issue_sentences or i + 1 in issue_sentences})
    if neighbours:
        return [sentences[i] for i in neighbours]
    fallback = sorted(party_sentences) or sorted(issue_sentences)
    return [sentences[i] for i in fallback]


def spread(items: list, limit: int) -> list:
    """At most `limit` of `items`, evenly spaced from the first to the last, in their order."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return items[:limit]
    step = (len(items) - 1) / (limit - 1)
    return [items[round(index * step)] for index in range(limit)]


def pair_windows(text: str, anchors: list[Span], max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[Span, Span]]:
    """Every distinct (window, anchor sentence) a pair could be read through, in reading order: around
    each anchor, or, with no anchors (the pair is not found in the text), the text chunk by chunk, since
    a short statement ("We warned them...") is about its speaker even when the speaker is never named."""
    return windows_around(text, sorted(anchors), max_chars) if anchors else chunk_windows(text, max_chars)


def window_inputs(
    text: str,
    party: str | None,
    issue: str | None,
    party_spans: list[Span],
    windows: list[tuple[Span, Span]],
    issue_spans: list[Span] = (),
) -> list[ModelInput]:
    """One model input per (window, anchor sentence): the target, and the window with the party marked
    (and the issue, when `issue_spans` are given: pass them only to a model trained with issue markers)."""
    target = describe_target(party, issue)
    return [
        ModelInput(target, mark_mentions(text, window, party_spans, issue_spans), window, anchor) for window, anchor in windows
    ]


def pair_inputs(
    text: str,
    party: str | None,
    issue: str | None,
    party_spans: list[Span],
    anchors: list[Span],
    max_chars: int = DEFAULT_MAX_CHARS,
    limit: int = MAX_WINDOWS_PER_PAIR,
    issue_spans: list[Span] = (),
) -> list[ModelInput]:
    """Model inputs for one (party, issue) pair of an article: at most `limit` of its windows
    (`pair_windows`), spread over the article, with the party's (and given issue's) mentions marked."""
    windows = spread(pair_windows(text, anchors, max_chars), limit)
    return window_inputs(text, party, issue, party_spans, windows, issue_spans)


def overall_inputs(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[ModelInput]:
    """Model inputs for the stance and sentiment of the whole text, with no target: its lead, the first
    MAX_OVERALL_WINDOWS chunks (a single sentence or short statement is one chunk)."""
    return window_inputs(text, None, None, [], chunk_windows(text, max_chars)[:MAX_OVERALL_WINDOWS])
