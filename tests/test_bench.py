"""The benchmark: what it sends, which run a figure comes from, and the table the README shows."""

from benchmarks.http_bench import PARTY_SENTENCES, median_round, party_bodies, write_summary


def run(rps: float, p50: float) -> dict:
    return {"requests": int(rps * 10), "errors": 0, "seconds": 10.0, "rps": rps, "p50_ms": p50, "p95_ms": p50 * 1.5}


def test_one_party_requests_pin_the_party_mention_in_a_news_length_sentence():
    for body, (sentence, party, mention, issue) in zip(party_bodies(), PARTY_SENTENCES, strict=True):
        ((start, end),) = body["pairs"][0]["spans"]
        assert body["text"][start:end] == mention and (body["pairs"][0]["party"], body["pairs"][0]["issue"]) == (party, issue)
        assert len(sentence.split()) >= 20, "real news sentences, not headlines"
        assert "overall" not in body, "one party costs one window"


def test_a_figure_is_the_median_round_with_its_own_latencies():
    rounds = [run(300.0, 50.0), run(180.0, 90.0), run(250.0, 60.0)]
    assert median_round(rounds) == rounds[2], "one slow or fast round does not decide the figure"
    assert median_round(rounds[:2])["rps"] == 180.0, "an even count takes the lower middle round"


def test_the_summary_gives_each_server_as_a_multiple_of_the_anchor(tmp_path):
    share = {"share_of_peak": 0.5, "peak": "fp32 matmul"}
    rows = [
        {"server": "anchor", "party_c1": run(40.0, 25.0), "party_c16": run(36.0, 400.0), "compute_share": share},
        {
            "server": "onnx",
            "party_c1": run(90.0, 10.0),
            "party_c16": run(252.0, 60.0),
            "overall_c16": run(300.0, 50.0),
            "article_4000_c1": run(3.0, 300.0),
            "compute_share": share,
            "model_alone_windows_per_second": 288.0,
        },
    ]
    write_summary(rows, tmp_path / "summary.md")
    anchor_row, onnx_row = (tmp_path / "summary.md").read_text().splitlines()[2:]
    assert "| 36.0 |" in anchor_row and "| 1.0 |" in anchor_row and "| n/a |" in anchor_row
    assert "| 252.0 |" in onnx_row and "| 7.0 |" in onnx_row and "300.0 / 450.0" in onnx_row and "| 300.0 |" in onnx_row
    assert onnx_row.endswith("| 288.0 (8.0) |"), "the backend's own ceiling, as a multiple of the anchor"
