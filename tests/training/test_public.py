"""Converters for the public corpora, on small files written here in the upstream formats, and an
integration check on a slice of the offline mirror when STANCELINE_DATA_MIRROR points at one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training import public
from training.corpora import conflibert_cameo, default_recipe, directed_sentiment, every_corpus, newsmtsc, plover, un_quadclass
from training.items import OVERALL
from training.labels import IGNORE_INDEX, SENTIMENT_LABELS, STANCE_LABELS
from training.windows import ISSUE_CLOSE, ISSUE_OPEN, MARK_CLOSE, MARK_OPEN

NEWSMTSC_ROWS = [
    {
        "mention": "the minister",
        "from": 0,
        "to": 12,
        "sentence": "the minister was praised for a calm response.",
        "polarity": 1,
        "id": "a",
    },
    {
        "mention": "He",
        "from": 23,
        "to": 25,
        "sentence": "Critics said yesterday He had failed the town.",
        "polarity": -1,
        "id": "b",
    },
    {"mention": "Ms Diaz", "from": 0, "to": 7, "sentence": "Ms Diaz arrived on Tuesday.", "polarity": 0, "id": "c"},
]
QUADCLASS_TSV = (
    "en\tQuadClass\n"
    "The council welcomed the agreement between the two delegations.\t4\n"
    "Member states pledged funds for reconstruction.\t2\n"
    "The delegation condemned the shelling of the port.\t3\n"
    "Troops seized the border post overnight.\t1\n"
    "The meeting was adjourned at noon.\t0\n"
    "Both sides traded accusations and signed a truce.\t-1\n"
)


PLOVER_TSV = (
    "\tsentence_id\tsentence\tmarked_sentence\tsource\ttarget\tgold_penta\tgold_root\n"
    "0\t1\tx\t<s>The Andean bloc</s> imposed tariffs on <t>Ruritania</t> over the dispute.\ta\tb\t4\tSANCTION\n"
    "1\t2\tx\tOn Monday <s>Freedonia </s>held talks with <t>Ruritania</t> on water.\ta\tb\t1\tCONSULT\n"
    "2\t3\tx\t<t>Sylvania</t> was offered grain by <s>the Ruritanian government</s>.\ta\tb\t2\tAID\n"
    "3\t4\tx\tA line without marks.\ta\tb\t2\tAID\n"
)


def write_upstream(folder: Path) -> Path:
    (folder / "newsmtsc").mkdir(parents=True)
    for split in ("train", "dev"):
        (folder / "newsmtsc" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in NEWSMTSC_ROWS))
    (folder / "un-quadclass").mkdir()
    (folder / "un-quadclass" / "en_annotations_quad_multiclass.tsv").write_text(QUADCLASS_TSV)
    (folder / "plover").mkdir()
    (folder / "plover" / "PLV_train.tsv").write_text(PLOVER_TSV)
    return folder


def test_fetch_from_a_mirror_records_origin_and_checksums(tmp_path):
    mirror = write_upstream(tmp_path / "mirror")
    record = public.fetch(tmp_path / "data", mirror)
    assert public.available(tmp_path / "data") == ["newsmtsc", "un-quadclass", "plover"]
    assert record["plover/PLV_train.tsv"]["matches_pinned"] is False  # the test file is not the upstream one
    entry = record["newsmtsc/train.jsonl"]
    assert entry["origin"].startswith("mirror:") and len(entry["sha256"]) == 64
    assert entry["matches_pinned"] is False, "a mirror may hold a subset: taken as it is, and said so"
    assert json.loads((tmp_path / "data" / "SOURCES.json").read_text()) == record
    assert not list((tmp_path / "data").rglob("*.part"))


def test_a_file_missing_from_the_mirror_is_reported_not_invented(tmp_path):
    mirror = write_upstream(tmp_path / "mirror")
    (mirror / "newsmtsc" / "dev.jsonl").unlink()
    record = public.fetch(tmp_path / "data", mirror)
    assert "not in mirror" in record["newsmtsc/dev.jsonl"]["status"]
    assert not (tmp_path / "data" / "newsmtsc" / "dev.jsonl").exists()


def test_newsmtsc_gives_sentiment_toward_the_marked_mention(tmp_path):
    public.fetch(tmp_path / "data", write_upstream(tmp_path / "mirror"))
    data = tmp_path / "data"
    examples, info = public.training_examples("newsmtsc", data, window_chars=300)
    assert info["rows"] == 3 and len(examples) == 3
    assert [SENTIMENT_LABELS[e.sentiment] for e in examples] == ["positive", "negative", "neutral"]
    assert all(e.stance == IGNORE_INDEX for e in examples)
    assert examples[1].target == "He"
    assert f"yesterday {MARK_OPEN}He{MARK_CLOSE} had failed" in examples[1].window_text
    items = public.eval_items("newsmtsc:dev", data)
    assert items[1].document.pairs[0].spans == [(23, 25)] and items[1].gold == {0: {"sentiment": "negative"}}


def test_unlabelled_rows_come_after_the_trained_ones_without_labels(tmp_path):
    public.fetch(tmp_path / "data", write_upstream(tmp_path / "mirror"))
    data = tmp_path / "data"
    trained, info = public.training_examples("newsmtsc", data, window_chars=300, max_examples_per_corpus=1)
    unlabelled = public.unlabelled_examples("newsmtsc", data, window_chars=300, count=5, after=info["rows_used"])
    assert [e.target for e in trained] == ["the minister"]
    assert [e.target for e in unlabelled] == ["He", "Ms Diaz"], "the rows after the trained one, as many as there are"
    assert all(e.labels == [IGNORE_INDEX] * 3 for e in unlabelled)


def test_newsmtsc_rows_with_bad_offsets_are_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**NEWSMTSC_ROWS[0], "to": 400}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        newsmtsc.read_newsmtsc(path)


def test_quadclass_maps_codes_to_stance_and_drops_multilabel(tmp_path):
    path = write_upstream(tmp_path / "up") / "un-quadclass" / "en_annotations_quad_multiclass.tsv"
    rows = un_quadclass.read_quadclass(path)
    assert [stance for _, stance in rows] == ["cooperative", "cooperative", "pressure", "pressure", "neutral"]
    examples = un_quadclass.quadclass_examples(rows, window_chars=300)
    assert all(e.target == "overall" and e.sentiment == IGNORE_INDEX for e in examples)
    assert [STANCE_LABELS[e.stance] for e in examples] == [stance for _, stance in rows]


def test_quadclass_dev_portion_is_deterministic_and_never_trained_on(tmp_path):
    sentences = [f"Delegation number {i} signed the protocol on water." for i in range(400)]
    folder = tmp_path / "data" / "un-quadclass"
    folder.mkdir(parents=True)
    (folder / "en_annotations_quad_multiclass.tsv").write_text("en\tQuadClass\n" + "".join(f"{s}\t4\n" for s in sentences))
    dev = {item.document.text for item in public.eval_items("un-quadclass:dev", tmp_path / "data")}
    trained = {e.window_text for e in public.training_examples("un-quadclass", tmp_path / "data", 300)[0]}
    assert 0.08 < len(dev) / len(sentences) < 0.22
    assert not dev & trained and len(dev) + len(trained) == len(sentences)
    assert all(
        item.gold == {OVERALL: {"stance": "cooperative"}} for item in public.eval_items("un-quadclass:dev", tmp_path / "data")
    )


MIRROR = os.environ.get(public.MIRROR_SETTING)


@pytest.mark.skipif(not MIRROR or not Path(MIRROR).exists(), reason="set STANCELINE_DATA_MIRROR to the offline corpus mirror")
def test_real_mirror_slice_converts(tmp_path):
    record = public.fetch(tmp_path / "data", MIRROR)
    assert record["newsmtsc/train.jsonl"]["sha256"] == newsmtsc.CORPUS.sources[0].sha256
    examples, info = public.training_examples("newsmtsc", tmp_path / "data", 360, max_examples_per_corpus=300)
    assert len(examples) >= 300 and info["rows"] > 8000
    assert all(MARK_OPEN in e.window_text for e in examples)
    un_examples, _ = public.training_examples("un-quadclass", tmp_path / "data", 360, max_examples_per_corpus=300)
    assert {STANCE_LABELS[e.stance] for e in un_examples} == set(STANCE_LABELS)
    assert len(public.eval_items("newsmtsc:dev", tmp_path / "data")) == 343
    assert record["plover/PLV_train.tsv"]["matches_pinned"] is True
    plover_rows = plover.read_plover(tmp_path / "data" / "plover" / "PLV_train.tsv")
    assert len(plover_rows) == 1026 and all(row.source and row.target for row in plover_rows)  # 24 mark no target
    plover_dev = public.eval_items("plover:dev", tmp_path / "data")
    assert 100 < len(plover_dev) < 220 and all(item.roles[0] == "agent" for item in plover_dev)


def test_passes_take_fresh_rows_before_repeating_any():
    rows = list(range(10))
    assert public.rows_for_run(rows, max_examples_per_corpus=4, passes=1) == [0, 1, 2, 3]
    # three passes of four rows from ten: every row once before any comes back
    assert public.rows_for_run(rows, max_examples_per_corpus=4, passes=3) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    # a corpus smaller than a pass is taken whole each pass; 0 means no cap
    assert public.rows_for_run(rows[:3], max_examples_per_corpus=4, passes=2) == [0, 1, 2, 0, 1, 2]
    assert public.rows_for_run(rows, max_examples_per_corpus=0, passes=2) == rows + rows
    assert public.rows_for_run([], max_examples_per_corpus=4, passes=2) == []


def test_plover_rows_keep_the_marked_actors_as_offsets_into_the_clean_sentence(tmp_path):
    path = tmp_path / "PLV_train.tsv"
    path.write_text(PLOVER_TSV)
    rows = plover.read_plover(path)
    assert len(rows) == 3  # the row without marks is dropped
    first, second, third = rows
    assert first.sentence == "The Andean bloc imposed tariffs on Ruritania over the dispute."
    assert (first.source, first.target) == ("The Andean bloc", "Ruritania")
    assert first.sentence[slice(*first.target_span)] == "Ruritania"
    assert second.source == "Freedonia" and second.sentence.startswith("On Monday Freedonia held")  # tag spaces trimmed
    assert (third.source, third.target) == ("the Ruritanian government", "Sylvania")


def test_plover_pairs_give_the_acted_upon_party_neutral_only_for_one_sided_events(tmp_path):
    path = tmp_path / "PLV_train.tsv"
    path.write_text(PLOVER_TSV)
    sanction, talks, aid = (plover.plover_pairs(row) for row in plover.read_plover(path))
    assert [(r.party, r.issue, stance, role) for r, stance, role in sanction] == [
        ("The Andean bloc", "Ruritania", "pressure", "agent"),
        ("Ruritania", "The Andean bloc", "neutral", "acted-upon"),
    ]
    assert [(stance, role) for _, stance, role in talks] == [("cooperative", "agent")]  # talks are mutual: no reverse pair
    assert [(stance, role) for _, stance, role in aid] == [("cooperative", "agent"), ("neutral", "acted-upon")]
    examples = plover.plover_examples(plover.read_plover(path), window_chars=200)
    assert [STANCE_LABELS[e.stance] for e in examples] == ["pressure", "neutral", "cooperative", "cooperative", "neutral"]
    assert examples[1].target == "Ruritania on The Andean bloc"
    assert f"{MARK_OPEN}Ruritania{MARK_CLOSE}" in examples[1].window_text  # the asked party is the one marked
    assert all(e.sentiment == IGNORE_INDEX and e.evidence == IGNORE_INDEX for e in examples)


def test_plover_examples_with_issue_markers_brace_the_other_actor(tmp_path):
    path = tmp_path / "PLV_train.tsv"
    path.write_text(PLOVER_TSV)
    agent, acted_upon = plover.plover_examples(plover.read_plover(path)[:1], window_chars=200, issue_markers=True)
    assert f"{MARK_OPEN}The Andean bloc{MARK_CLOSE}" in agent.window_text
    assert f"{ISSUE_OPEN}Ruritania{ISSUE_CLOSE}" in agent.window_text
    assert f"{MARK_OPEN}Ruritania{MARK_CLOSE}" in acted_upon.window_text
    assert f"{ISSUE_OPEN}The Andean bloc{ISSUE_CLOSE}" in acted_upon.window_text


def test_plover_dev_items_mark_roles_and_never_overlap_training(tmp_path):
    folder = tmp_path / "data" / "plover"
    folder.mkdir(parents=True)
    lines = [
        f"{i}\t{i}\tx\t<s>Country {i}</s> threatened <t>its neighbour {i}</t> with a blockade.\ta\tb\t3\tTHREATEN\n"
        for i in range(300)
    ]
    (folder / "PLV_train.tsv").write_text(PLOVER_TSV.splitlines(keepends=True)[0] + "".join(lines))
    items = public.eval_items("plover:dev", tmp_path / "data")
    trained = {
        e.window_text.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")
        for e in public.training_examples("plover", tmp_path / "data", 200)[0]
    }
    assert 0.08 < len(items) / 300 < 0.22
    assert not {item.document.text for item in items} & trained
    assert items[0].roles == {0: "agent", 1: "acted-upon"}
    assert items[0].gold == {0: {"stance": "pressure"}, 1: {"stance": "neutral"}}
    assert items[0].document.pairs[0].spans == [(0, items[0].document.text.index(" threatened"))]


def test_every_corpus_declares_its_files_licence_and_place_in_the_recipe() -> None:
    for item in every_corpus():
        assert item.sources and item.licence and item.description
        assert all(source.url.startswith("https://") for source in item.sources)
    assert default_recipe() == ["newsmtsc", "un-quadclass", "plover"]
    with pytest.raises(ValueError, match="unknown public corpus 'nope'; known: newsmtsc"):
        public.corpus("nope")


def test_an_opt_in_corpus_is_fetched_only_when_named_and_never_trained_by_auto(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "conflibert-cameo"
    mirror.mkdir(parents=True)
    lines = [f"Veldland and Ostria signed a {n}th accord on river shipping today.\t{n % 5}" for n in range(40)]
    (mirror / "cameo_class_train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    public.fetch(data, tmp_path / "mirror", ["conflibert-cameo"])
    assert public.available(data) == ["conflibert-cameo"] and public.auto_corpora(data) == []
    train = public.training_examples("conflibert-cameo", data, window_chars=200)[0]
    dev = public.eval_items("conflibert-cameo:dev", data)
    assert len(train) + len(dev) == 40
    assert {STANCE_LABELS[e.stance] for e in train} == {"neutral", "cooperative", "pressure"}


def test_a_cameo_row_without_a_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cameo.tsv"
    path.write_text("Veldland protested.\tseven\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cameo.tsv:1: expected sentence<TAB>class"):
        conflibert_cameo.read_cameo_classes(path)


# invented sentences in directed sentiment's format: sentence<TAB>p<TAB>q<TAB>label, p and q bracketed,
# CSV quoting, upstream's names cut of a trailing "s" ("[the Northern Isle]s")
DIRECTED_TXT = (
    "The [Veldland] government condemned [Ostria] over the dam.\tVeldland\tOstria\t3\n"
    '"Officials in [Ostria] praised [the Northern Isle]s for ""quiet"" diplomacy."\tOstria\tthe Northern Isle\t1\n'
    "[Mayor Rilke] was thanked by [the Harbour Guild] for the grant.\tMayor Rilke\tthe Harbour Guild\t2\n"
    "[Senator Okafor] came under attack from [Kestrel Party] leaders.\tSenator Okafor\tKestrel Party\t4\n"
    " [Ostria’]s envoy and [Veldland] meet again in May. \tOstria’\tVeldland\t0\n"
    "Prices rose 4[%] in [Veldland] last year.\t%\tVeldland\t0\n"
    "Ostria met Veldland on Friday.\tOstria\tVeldland\t0\n"
)


def test_directed_sentiment_rows_lose_the_brackets_and_unusable_entities_are_skipped(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text(DIRECTED_TXT, encoding="utf-8")
    rows, skipped = directed_sentiment.scan_directed(path)
    assert skipped == {"not bracketed": [7], "no letter": [6]}
    assert [row.label for row in rows] == [3, 1, 2, 4, 0]
    condemn, praise, _, _, meeting = rows
    assert condemn.sentence == "The Veldland government condemned Ostria over the dam."
    assert condemn.sentence[slice(*condemn.q_span)] == "Ostria"
    assert praise.sentence == 'Officials in Ostria praised the Northern Isles for "quiet" diplomacy.'
    assert (praise.p, praise.q) == ("Ostria", "the Northern Isles")  # widened to the whole word
    assert meeting.sentence.startswith("Ostria’s envoy and Veldland") and meeting.p == "Ostria"  # possessive left out
    assert meeting.p_span == (0, 6)
    assert all("[" not in row.sentence and "]" not in row.sentence for row in rows)
    with caplog.at_level("WARNING"):
        assert directed_sentiment.read_directed(path) == rows
    assert "skipped 2 of 7 rows" in caplog.text and "1 no letter (first at line 6)" in caplog.text


def test_directed_sentiment_gives_the_holder_its_opinion_and_the_other_entity_neutral(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(DIRECTED_TXT, encoding="utf-8")
    rows = directed_sentiment.read_directed(path)
    pairs = [[(r.party, r.issue, stance, role) for r, stance, role in directed_sentiment.directed_pairs(row)] for row in rows]
    assert pairs == [
        [("Veldland", "Ostria", "pressure", "agent"), ("Ostria", "Veldland", "neutral", "acted-upon")],
        [("Ostria", "the Northern Isles", "cooperative", "agent"), ("the Northern Isles", "Ostria", "neutral", "acted-upon")],
        [
            ("Mayor Rilke", "the Harbour Guild", "neutral", "acted-upon"),
            ("the Harbour Guild", "Mayor Rilke", "cooperative", "agent"),
        ],
        [("Senator Okafor", "Kestrel Party", "neutral", "acted-upon"), ("Kestrel Party", "Senator Okafor", "pressure", "agent")],
        [("Ostria", "Veldland", "neutral", None), ("Veldland", "Ostria", "neutral", None)],
    ]
    examples = directed_sentiment.directed_examples(rows, window_chars=200, issue_markers=True)
    assert [STANCE_LABELS[e.stance] for e in examples] == [stance for row in pairs for _, _, stance, _ in row]
    assert all(e.sentiment == IGNORE_INDEX and e.evidence == IGNORE_INDEX for e in examples)  # stance only
    assert examples[3].target == "the Northern Isles on Ostria"
    assert examples[3].window_text == (
        f'Officials in {ISSUE_OPEN}Ostria{ISSUE_CLOSE} praised {MARK_OPEN}the Northern Isles{MARK_CLOSE} for "quiet" diplomacy.'
    )
    plain = directed_sentiment.directed_examples(rows[:1], window_chars=200)
    assert plain[0].window_text == f"The {MARK_OPEN}Veldland{MARK_CLOSE} government condemned Ostria over the dam."


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[Ostria] and [Veldland] met.\tOstria\tVeldland\n", r"bad\.txt:2: expected sentence<TAB>p<TAB>q<TAB>label, got 3"),
        ("[Ostria] and [Veldland] met.\tOstria\tVeldland\t5\n", r"bad\.txt:2: label '5' is not one of \[0, 1, 2, 3, 4\]"),
        ("[Ostria] and [Veldland] met.\tOstria\tVeldland\tpos\n", r"bad\.txt:2: label 'pos' is not one of"),
    ],
)
def test_a_malformed_directed_sentiment_row_is_refused_with_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(DIRECTED_TXT.splitlines(keepends=True)[0] + line, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        directed_sentiment.read_directed(path)


def test_directed_sentiment_is_registered_opt_in_with_split_files(tmp_path: Path) -> None:
    source = public.corpus("directed-sentiment")
    assert source is directed_sentiment.CORPUS and not source.in_default_recipe
    assert [s.name for s in source.sources] == ["train.txt", "valid.txt"]
    assert all(len(s.sha256 or "") == 64 and "/6a1275f0/dataset/" in s.url for s in source.sources)
    mirror = tmp_path / "mirror" / "directed-sentiment"
    mirror.mkdir(parents=True)
    (mirror / "train.txt").write_text(DIRECTED_TXT, encoding="utf-8")
    (mirror / "valid.txt").write_text(DIRECTED_TXT.splitlines(keepends=True)[0], encoding="utf-8")
    data = tmp_path / "data"
    public.fetch(data, tmp_path / "mirror", ["directed-sentiment"])
    assert public.available(data) == ["directed-sentiment"] and public.auto_corpora(data) == []
    assert len(public.training_examples("directed-sentiment", data, window_chars=200)[0]) == 8  # the four opinion rows, both ways
    (item,) = public.eval_items("directed-sentiment:dev", data)
    assert item.gold == {0: {"stance": "pressure"}, 1: {"stance": "neutral"}}
    assert item.roles == {0: "agent", 1: "acted-upon"}
    assert item.document.pairs[0].spans == [(4, 12)]
    with pytest.raises(ValueError, match="directed-sentiment has splits train and dev, not 'test'"):
        public.eval_items("directed-sentiment:test", data)


@pytest.mark.skipif(not MIRROR or not Path(MIRROR).exists(), reason="set STANCELINE_DATA_MIRROR to the offline corpus mirror")
def test_real_directed_sentiment_files_match_their_pins_and_convert(tmp_path):
    record = public.fetch(tmp_path / "data", MIRROR, ["directed-sentiment"])
    assert all(record[f"directed-sentiment/{name}"]["matches_pinned"] for name in ("train.txt", "valid.txt"))
    every_row = directed_sentiment.read_directed(tmp_path / "data" / "directed-sentiment" / "train.txt")
    assert len(every_row) > 12900  # of 13,144: rows whose entity has no letter are skipped
    _, train = directed_sentiment.CORPUS.rows(tmp_path / "data", "train")
    assert len(train) == sum(row.label != 0 for row in every_row) > 4000  # training reads the opinion rows
    assert len(public.eval_items("directed-sentiment:dev", tmp_path / "data")) > 1400


def test_a_capped_run_reads_every_opinion_of_a_file_sorted_by_label(tmp_path: Path) -> None:
    """The upstream file lists its rows by label, its opinions last: a run that takes the first rows must
    still get opinions, and of every kind."""
    lines = [f"[Ostria] and [Veldland] met in round {n}.\tOstria\tVeldland\t0\n" for n in range(40)]
    lines += [f"[Ostria] thanked [Veldland] for grant {n}.\tOstria\tVeldland\t1\n" for n in range(6)]
    lines += [f"[Ostria] condemned [Veldland] over raid {n}.\tOstria\tVeldland\t3\n" for n in range(6)]
    folder = tmp_path / "data" / "directed-sentiment"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("".join(lines), encoding="utf-8")
    examples, _ = public.training_examples("directed-sentiment", tmp_path / "data", window_chars=200, max_examples_per_corpus=4)
    holders = [STANCE_LABELS[e.stance] for e in examples if e.target.startswith("Ostria")]
    assert len(examples) == 8 and {"cooperative", "pressure"} <= set(holders)
