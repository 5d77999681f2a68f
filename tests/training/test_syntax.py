"""The syntax layer: who acts in a sentence, and the parser it loads."""

from __future__ import annotations

import pytest

from training import syntax


@pytest.fixture(scope="module")
def parser() -> syntax.Syntax:
    loaded = syntax.Syntax.load("auto")
    assert loaded is not None
    return loaded


def acts(parser: syntax.Syntax, text: str, name: str) -> bool:
    start = text.index(name)
    return parser.acts(text, [(start, start + len(name))])


@pytest.mark.parametrize(
    ("text", "actor", "not_actor"),
    [
        ("Veldland imposed new sanctions on Ostria on Monday.", "Veldland", "Ostria"),
        ("Ostria was sanctioned by Veldland over the border clash.", "Veldland", "Ostria"),
        ("Veldland's foreign minister criticised Ostria over the dam project.", "Veldland", "Ostria"),
        ("The talks in Marovia ended after Ostria rejected the proposal.", "Ostria", "Marovia"),
    ],
)
def test_the_actor_acts_and_the_acted_upon_does_not(parser: syntax.Syntax, text: str, actor: str, not_actor: str) -> None:
    assert acts(parser, text, actor)
    assert not acts(parser, text, not_actor)


def test_each_text_is_parsed_once(parser: syntax.Syntax) -> None:
    text = "Veldland and Ostria agreed to reopen the border crossing."
    assert parser.parse(text) is parser.parse(text)


def test_off_means_no_parser() -> None:
    assert syntax.Syntax.load("off") is None


def test_a_reupload_that_is_not_the_pinned_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax, "OFFICIAL", "no_such_spacy_package")
    monkeypatch.setattr(syntax, "REUPLOAD_FILES_SHA256", "0" * 64)
    with pytest.raises(syntax.ParserError, match="does not match the pinned"):
        syntax.resolve_parser("auto")
