"""Same article, same answer: what a backend says about a document does not depend on the documents that
share its batch, nor on how `stanceline score` cuts a collection into chunks (issue 26).

Every served backend is checked: torch, ONNX float32 (`onnx`) and int8, run batched: its activation
scales come from each token's own row (`training.quantize`). Window probabilities must agree within 1e-5; answers carry scores
rounded to 4 decimals, so there labels must be equal and scores within one rounding step.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import exported_copy
from training.predictor import Document, PairRequest, Predictor

BACKENDS = ["torch", "onnx", "int8"]

SENTENCES = [
    "Japan demanded that North Korea halt its missile launches.",
    "Russia offered to host talks on the missile issue.",
    "China urged restraint over Taiwan and warned the United States against arms sales to the island, "
    "saying that any further step would meet a firm response from Beijing and its armed forces.",
    "Iran rejected the sanctions imposed by the European Union.",
    "France said it remained open to talks with Tehran.",
    "Kenya ratified the treaty on fisheries and praised the talks.",
    "Brazil pledged at the summit to halve deforestation in the Amazon by the end of the decade and invited its "
    "neighbours to join a common monitoring fund that Norway and Germany have offered to finance.",
    "India agreed with Pakistan to reopen the border crossing.",
    "Egypt welcomed the offer to mediate the dispute over the Nile dam.",
    "Washington warned Caracas that the oil sanctions would return.",
]
PAIRS = [("Japan", "North Korea"), ("Russia", "missile launches"), ("China", "Taiwan"), ("Iran", "sanctions"), ("Brazil", None)]
PROPERTY = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
"""Few examples, each a whole batch of documents: the module stays under a minute once the tiny model exists."""


@pytest.fixture(scope="module")
def exported_model(tiny_model, tmp_path_factory):
    return exported_copy(tiny_model, tmp_path_factory.mktemp("invariance") / "model")


@pytest.fixture(scope="module")
def predictors(exported_model) -> dict[str, Predictor]:
    return {backend: Predictor.from_folder(exported_model, backend=backend) for backend in BACKENDS}


def make_document(sentences: list[int], pair: int | None) -> Document:
    """Sentences of the pool in the drawn order (mixed lengths); pairs detected, or one pair asked for."""
    text = " ".join(SENTENCES[index] for index in sentences)
    return Document(text, None if pair is None else [PairRequest(*PAIRS[pair])])


documents = st.lists(
    st.builds(
        make_document,
        st.lists(st.integers(0, len(SENTENCES) - 1), min_size=1, max_size=6),
        st.one_of(st.none(), st.integers(0, len(PAIRS) - 1)),
    ),
    min_size=1,
    max_size=24,
)


def cut(items: list, sizes: list[int]) -> list[list]:
    """`items` in consecutive batches of the drawn sizes (the last size repeats until all are used)."""
    batches, start, index = [], 0, 0
    while start < len(items):
        size = sizes[min(index, len(sizes) - 1)]
        batches.append(items[start : start + size])
        start, index = start + size, index + 1
    return batches


def same_answer(got: dict, want: dict) -> None:
    """Labels equal; scores (rounded to 4 decimals) within one rounding step; evidence weights likewise."""
    assert [r["party"] for r in got["results"]] == [r["party"] for r in want["results"]]
    for one, other in zip([got["overall"], *got["results"]], [want["overall"], *want["results"]], strict=True):
        if other is None:
            assert one is None
            continue
        for task in ("stance", "sentiment"):
            assert one[task]["label"] == other[task]["label"], task
            for label, value in other[task]["scores"].items():
                assert abs(one[task]["scores"][label] - value) <= 1e-4 + 1e-9, (task, label)
        weights = [(e["start"], e["weight"]) for e in one.get("evidence", [])]
        expected = [(e["start"], e["weight"]) for e in other.get("evidence", [])]
        assert sorted(w[0] for w in weights) == sorted(w[0] for w in expected)
        assert np.allclose(sorted(weights), sorted(expected), atol=1e-4 + 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(
    batch=documents,
    sizes=st.lists(st.integers(1, 32), min_size=1, max_size=8),
    window_batch=st.integers(1, 32),
    seed=st.integers(0, 2**16),
)
def test_a_documents_answer_does_not_depend_on_its_batch(predictors, backend, batch, sizes, window_batch, seed):
    predictor = predictors[backend]
    predictor.classifier.batch_size = 32
    alone = [predictor.predict([document])[0] for document in batch]
    order = list(range(len(batch)))
    random.Random(seed).shuffle(order)
    predictor.classifier.batch_size = window_batch  # windows per model call, as the server's batch_size
    together: dict[int, dict] = {}
    for group in cut(order, sizes):
        for index, answer in zip(group, predictor.predict([batch[i] for i in group]), strict=True):
            together[index] = answer
    for index, answer in enumerate(alone):
        same_answer(together[index], answer)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(windows=documents, seed=st.integers(0, 2**16), window_batch=st.integers(1, 32))
def test_window_probabilities_alone_and_batched_agree_within_1e_5(predictors, backend, windows, seed, window_batch):
    """The property below the answers, unrounded: each window alone against all of them in shuffled,
    length-sorted batches of mixed lengths."""
    classifier = predictors[backend].classifier
    pairs = [(m.target, m.window_text) for d in windows for m in predictors[backend].plan(d).model_inputs]
    random.Random(seed).shuffle(pairs)
    classifier.batch_size = window_batch
    batched = classifier.predict(pairs)
    for index, pair in enumerate(pairs):
        alone = classifier.predict([pair])
        for task in ("stance", "sentiment"):
            assert np.abs(alone[task][0] - batched[task][index]).max() <= 1e-5, (task, pair)
            assert alone[task][0].argmax() == batched[task][index].argmax()
    classifier.batch_size = 32


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> tuple:
    """A JSONL collection (documents with ids, detected or asked-for pairs, one bad line)."""
    folder = tmp_path_factory.mktemp("feed")
    rng = random.Random(5)
    lines = []
    for index in range(30):
        body: dict = {"id": index, "text": " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 5)))}
        if index % 3 == 0:
            party, issue = rng.choice(PAIRS)
            body["pairs"] = [{"party": party, "issue": issue}]
        lines.append(json.dumps(body))
    lines.insert(17, '{"id": "broken", "text": ')
    source = folder / "feed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    return source


@pytest.fixture(scope="module")
def predicted(exported_model, feed, tmp_path_factory) -> dict[str, list[dict]]:
    """`stanceline predict`'s output for the feed, per backend."""
    from serving.predict_files import predict_file

    answers = {}
    for backend in BACKENDS:
        output = tmp_path_factory.mktemp("predicted") / f"{backend}.jsonl"
        predict_file(feed, output, str(exported_model), backend=backend)
        answers[backend] = [json.loads(line) for line in output.read_text().splitlines()]
    return answers


@pytest.mark.parametrize("backend", BACKENDS)
@settings(PROPERTY, max_examples=4)
@given(rows_per_chunk=st.integers(1, 35), batch_documents=st.integers(1, 32))
def test_score_answers_as_predict_does_for_any_batch_size(
    predictors, predicted, feed, tmp_path_factory, backend, rows_per_chunk, batch_documents
):
    """What each `stanceline score` actor does with its chunks (Ray only distributes them), for any
    `--batch-size` (rows per chunk) and `--batch-documents`, against `stanceline predict` line for line."""
    import pyarrow.parquet as pq

    from serving.score import plan_chunks, score_chunk
    from tests.serving.test_score import same_answer as same_line

    output = tmp_path_factory.mktemp("scored")
    for chunk in plan_chunks([str(feed)], str(output), rows_per_chunk):
        score_chunk(predictors[backend], chunk, batch_documents)
    rows = sorted((row for path in output.glob("*.parquet") for row in pq.read_table(path).to_pylist()), key=lambda r: r["line"])
    assert len(rows) == len(predicted[backend])
    for row, answer in zip(rows, predicted[backend], strict=True):
        same_line(json.loads(row["answer"]), answer)
