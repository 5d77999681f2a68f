"""ConfliBERT's CAMEO class set (Hu et al., NAACL 2022; repository GPL-3.0, text not owned by its team:
research use, opt-in, never redistributed): real news sentences with a CAMEO quad class.

Classes 1 (verbal cooperation) and 2 (material cooperation) become `cooperative`, 3 (verbal conflict,
mostly investigations) and 4 (material conflict, mostly protests) `pressure`, 0 (statements and appeals
without such an act) `neutral`, as whole-sentence stance (`overall`), like UN QuadClass. It is not in the
default recipe: `stanceline data conflibert-cameo`, then `public_corpora = [..., "conflibert-cameo"]`.
One file: a deterministic 15% of sentences is the dev portion (`conflibert-cameo:dev`).
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from training.corpora.base import Corpus, SourceFile, sentence_stance_examples
from training.corpora.un_quadclass import quadclass_items

CAMEO_STANCE = {0: "neutral", 1: "cooperative", 2: "cooperative", 3: "pressure", 4: "pressure"}
URL = "https://raw.githubusercontent.com/eventdata/ConfliBERT/0b630014/data/cameo_class/train.tsv"


def read_cameo_classes(path: Path) -> list[tuple[str, str]]:
    """(sentence, stance) rows of `sentence<TAB>class`; a row without a known class is an error."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line_number, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or not "".join(fields).strip():
                continue
            try:
                code = int(fields[-1])
            except ValueError:
                raise ValueError(f"{path}:{line_number}: expected sentence<TAB>class, got {fields[-1][:20]!r}") from None
            sentence = "\t".join(fields[:-1]).strip()
            if code not in CAMEO_STANCE or not sentence:
                raise ValueError(f"{path}:{line_number}: class {code} is not one of {sorted(CAMEO_STANCE)}, or no sentence")
            rows.append((sentence, CAMEO_STANCE[code]))
    return rows


cameo_examples = partial(sentence_stance_examples, "conflibert-cameo")


CORPUS = Corpus(
    name="conflibert-cameo",
    description="news sentences with a CAMEO quad class (ConfliBERT's evaluation set)",
    licence="GPL-3.0 repository, text not owned by its team: research use, never redistributed",
    in_default_recipe=False,
    sources=(SourceFile("cameo_class_train.tsv", URL, "556c5a91ea278517b6f1595d2a55c04ca98219f255c95a617783decd179fd5fb"),),
    file=lambda split: "cameo_class_train.tsv",
    read=read_cameo_classes,
    text=lambda row: row[0],
    examples=cameo_examples,
    items=quadclass_items,
)
