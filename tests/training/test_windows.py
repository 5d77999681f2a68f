from training.text import split_sentences
from training.windows import (
    ISSUE_CLOSE,
    ISSUE_OPEN,
    MARK_CLOSE,
    MARK_OPEN,
    describe_target,
    mark_mentions,
    meeting_points,
    overall_inputs,
    pair_inputs,
)

ARTICLE = (
    "Officials gathered in Vladivostok on Thursday. "
    "Abe called for maximum pressure on Pyongyang, while Putin urged a political and diplomatic manner. "
    "The two leaders also discussed fisheries near the disputed islands. "
    + "Trade between the countries grew last year, officials said. " * 12
    + "Tokyo later repeated its call for sanctions on North Korea."
)


def test_sentences_split_on_ends_but_not_on_abbreviations():
    text = "The U.S. envoy met Mr. Kim in Seoul. Talks resume Monday!\n\nA new paragraph"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "The U.S. envoy met Mr. Kim in Seoul.",
        "Talks resume Monday!",
        "A new paragraph",
    ]


def test_window_holds_the_anchor_sentence_and_respects_the_budget():
    anchor_start = ARTICLE.index("Abe called")
    inputs = pair_inputs(
        ARTICLE, "Japan", "North Korea", [(anchor_start, anchor_start + 3)], [(anchor_start, anchor_start + 10)], max_chars=300
    )
    assert len(inputs) == 1
    window = inputs[0]
    assert window.window[0] <= anchor_start < window.window[1]
    assert window.window[1] - window.window[0] <= 300
    assert ARTICLE[window.anchor[0] : window.anchor[1]].startswith("Abe called for maximum pressure")
    assert window.target == "Japan on North Korea"


def test_party_mentions_are_marked_so_the_model_knows_which_party_is_asked_about():
    text = "Abe pressed while Putin urged talks."
    assert mark_mentions(text, (0, len(text)), [(18, 23)]) == f"Abe pressed while {MARK_OPEN}Putin{MARK_CLOSE} urged talks."


def test_brackets_of_the_text_itself_cannot_pass_for_mention_markers():
    text = "The envoy [of Chile] said Lima [sic] would wait."
    lima = text.index("Lima")
    marked = mark_mentions(text, (0, len(text)), [(lima, lima + 4)])
    assert marked == f"The envoy (of Chile) said {MARK_OPEN}Lima{MARK_CLOSE} (sic) would wait."
    assert marked.count(MARK_OPEN) == marked.count(MARK_CLOSE) == 1


def test_issue_mentions_are_braced_so_the_model_sees_who_acts_on_whom():
    text = "The EU extended sanctions on Moscow {again}."
    moscow, sanctions = text.index("Moscow"), text.index("sanctions")
    marked = mark_mentions(text, (0, len(text)), [(moscow, moscow + 6)], [(sanctions, sanctions + 9)])
    assert marked == f"The EU extended {ISSUE_OPEN}sanctions{ISSUE_CLOSE} on {MARK_OPEN}Moscow{MARK_CLOSE} (again)."


def test_where_party_and_issue_mentions_overlap_the_party_marker_wins():
    text = "Seoul and Pyongyang met."
    marked = mark_mentions(text, (0, len(text)), [(0, 5)], [(0, 19), (10, 19)])
    assert marked == f"{MARK_OPEN}Seoul{MARK_CLOSE} and {ISSUE_OPEN}Pyongyang{ISSUE_CLOSE} met."


def test_a_short_text_is_read_whole_even_when_the_party_is_not_named():
    inputs = pair_inputs("We warned them that sanctions will follow.", "Iran", "sanctions", [], [])
    assert [m.window_text for m in inputs] == ["We warned them that sanctions will follow."]


def test_a_long_text_with_no_mention_is_read_in_chunks_covering_it():
    inputs = pair_inputs(ARTICLE, "Iran", "sanctions", [], [], max_chars=300)
    assert len(inputs) > 1
    assert inputs[0].window[0] == 0 and inputs[-1].window[1] == len(ARTICLE)
    assert all(m.window[1] - m.window[0] <= 300 for m in inputs)
    assert inputs[0].target == describe_target("Iran", "sanctions") == "Iran on sanctions"
    lead = overall_inputs(ARTICLE, max_chars=300)
    assert len(lead) == 3 and lead[0].target == "overall" and lead[0].window[0] == 0


def test_meeting_points_prefer_sentences_with_both_party_and_issue():
    sentences = split_sentences(ARTICLE)
    party = [(ARTICLE.index("Abe"), ARTICLE.index("Abe") + 3), (ARTICLE.index("Tokyo"), ARTICLE.index("Tokyo") + 5)]
    issue = [(ARTICLE.index("Pyongyang"), ARTICLE.index("Pyongyang") + 9)]
    assert [ARTICLE[s:e][:9] for s, e in meeting_points(sentences, party, issue)] == ["Abe calle"]
    issue_elsewhere = [(ARTICLE.index("The two leaders"), ARTICLE.index("The two leaders") + 3)]
    assert [ARTICLE[s:e][:9] for s, e in meeting_points(sentences, party, issue_elsewhere)] == ["Abe calle"]
    assert meeting_points(sentences, [], []) == []


def test_a_pair_is_read_through_a_bounded_spread_of_the_article_not_only_its_lead():
    from training.windows import MAX_WINDOWS_PER_PAIR

    text = " ".join(f"Kenya signed accord number {i} on trade with its neighbours in the region." for i in range(30))
    anchors = [(m, m + 5) for m in range(len(text)) if text.startswith("Kenya", m)]
    inputs = pair_inputs(text, "Kenya", "trade", anchors, list(reversed(anchors)), max_chars=100)
    assert len(inputs) == MAX_WINDOWS_PER_PAIR
    starts = [m.anchor[0] for m in inputs]
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] == anchors[-1][0]  # the last meeting is read too


def test_spread_keeps_order_and_both_ends():
    from training.windows import spread

    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([1, 2], 4) == [1, 2]
    assert spread(list(range(5)), 1) == [0]


def test_a_pair_not_found_reads_a_bounded_number_of_chunks():
    from training.windows import MAX_WINDOWS_PER_PAIR

    text = " ".join(f"Sentence {i} says nothing about anyone in particular here." for i in range(200))
    assert len(pair_inputs(text, "Chile", "copper", [], [], max_chars=100)) == MAX_WINDOWS_PER_PAIR


def test_sentence_lookup_by_bisection_finds_exactly_the_overlapping_sentences():
    import random

    from training.text import split_sentences
    from training.windows import sentence_indices

    text = " ".join(f"Delegation {i} met at noon." for i in range(60))
    sentences = split_sentences(text)
    rng = random.Random(0)
    for _ in range(500):
        start = rng.randrange(len(text))
        span = (start, rng.randrange(start + 1, len(text) + 1))
        assert sentence_indices(sentences, span) == [i for i, (s, e) in enumerate(sentences) if s < span[1] and e > span[0]]
