"""`stanceline predict`: a JSONL file in, answers out with the same ids, bad lines reported in place."""

import json

from stanceline.cli import main

TEXT = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."


def test_predict_answers_each_line_and_reports_bad_ones_in_place(tiny_model, tmp_path, capsys):
    source = tmp_path / "docs.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"id": "good-1", "text": TEXT, "pairs": [{"party": "Japan", "issue": "missile launches"}]}),
                "{this is not json",
                json.dumps({"id": "no-text", "text": ""}),
                json.dumps({"id": "spans", "text": "He agreed.", "pairs": [{"party": "Kenya", "spans": [[0, 50]]}]}),
                json.dumps({"id": 5, "text": TEXT}),
            ]
        )
        + "\n"
    )
    output = tmp_path / "out" / "answers.jsonl"
    assert main(["predict", "--input", str(source), "--output", str(output), "--model", str(tiny_model), "--batch", "2"]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line.get("id") for line in lines] == ["good-1", None, "no-text", "spans", 5]
    assert lines[0]["results"][0]["stance"]["label"] == "pressure"
    assert lines[1]["error"]["code"] == "bad_json" and lines[1]["line"] == 2
    assert lines[2]["error"]["code"] == "invalid_request" and "text" in lines[2]["error"]["message"]
    assert "outside the text" in lines[3]["error"]["message"]
    assert lines[4]["results"], "pairs were detected for the last document"
    assert not list(output.parent.glob(".*.part")), "no partial file is left behind"
    err = capsys.readouterr().err
    assert "2 answered, 3 error line(s)" in err
    read = sum(len(r["evidence"]) for line in lines for r in line.get("results", [])) + sum(
        1
        for line in lines
        if line.get("overall")  # each text here is one chunk: `overall` reads one window
    )
    assert f"{read} model windows in" in err, "the run reports the windows it read"
    assert "documents/s" in err and "windows/s" in err


def test_predict_with_a_missing_input_fails_clearly(tiny_model, tmp_path, capsys):
    assert (
        main(
            [
                "predict",
                "--input",
                str(tmp_path / "none.jsonl"),
                "--output",
                str(tmp_path / "o.jsonl"),
                "--model",
                str(tiny_model),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_predict_with_a_missing_model_names_the_fix(tmp_path, capsys):
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": 1, "text": TEXT}) + "\n")
    assert (
        main(["predict", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--model", str(tmp_path / "nomodel")])
        == 2
    )
    assert "make train" in capsys.readouterr().err
