"""The bundled datasets: present, in the documented format, small, and built the documented way."""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "src/rnnkit/data/builtin"


def read_rows(split: str) -> list[tuple[str, str]]:
    with gzip.open(BUILTIN / f"default_{split}.csv.gz", "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["label", "text"]
        return [(label, text) for label, text in reader]


@pytest.fixture(scope="module")
def default():
    return {split: read_rows(split) for split in ("train", "valid", "test")}


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_default", ROOT / "scripts/build_default_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_is_split_about_80_10_10_with_43_labels(default):
    sizes = {split: len(rows) for split, rows in default.items()}
    total = sum(sizes.values())
    assert 110_000 < total < 120_000
    assert abs(sizes["train"] / total - 0.8) < 0.01 and abs(sizes["test"] / total - 0.1) < 0.01
    labels = {label for rows in default.values() for label, _ in rows}
    assert len(labels) == 43 and {"noun.animal", "noun.food", "verb.motion", "noun.other"} <= labels
    assert not labels & {"adj.ppl", "noun.Tops", "noun.motive"}  # merged, see builtin/README.md
    assert {label for label, _ in default["test"]} == labels


def test_default_texts_are_glosses_without_examples(default):
    texts = [text for rows in default.values() for _, text in rows]
    assert all(text and text == text.strip() and not text.endswith(";") for text in texts)
    assert sum('"' in text for text in texts) == 0
    lion = "large gregarious predatory feline of Africa and India having a tawny coat with a shaggy mane"
    lion += " in the male"
    assert ("noun.animal", lion) in default["train"] + default["valid"] + default["test"]


def test_no_row_is_repeated_across_splits(default):
    train = set(default["train"])
    assert not train & set(default["test"]) and not train & set(default["valid"])


def test_bundled_files_are_small_and_licensed():
    vectors = BUILTIN / "glove.6B.50d.safetensors"  # 100,000 words × 50 in float16
    total = sum(p.stat().st_size for p in BUILTIN.iterdir() if p != vectors)
    assert total < 5_000_000 and vectors.stat().st_size < 11_000_000
    assert "ODC" in (BUILTIN / "GLOVE_LICENSE.txt").read_text()
    assert (
        "WordNet 3.0 Copyright 2006 by Princeton University" in (BUILTIN / "WORDNET_LICENSE.txt").read_text()
    )
    with gzip.open(BUILTIN / "shakespeare_valid.txt.gz", "rt", encoding="utf-8") as f:
        assert len(f.read()) == 111_540


def test_gloss_cleaning(builder):
    clean = builder.clean_gloss
    assert clean('not accommodating; "the unaccommodating bus driver pulled out"  ') == "not accommodating"
    assert clean('independent of order; as in e.g. "a x b = b x a"') == "independent of order"
    assert clean('causing a sharp taste;"quinine is bitter"') == "causing a sharp taste"
    assert clean('in fear, "she hurried down the stairs fearfully"') == "in fear"
    assert clean('a unclosed "quote and more') == "a unclosed"
    assert (
        clean("(usually followed by `to') able; having means")
        == "(usually followed by `to') able; having means"
    )


def test_synset_parsing_and_split(builder):
    line = (
        "02129165 05 n 03 lion 0 king_of_beasts 0 Panthera_leo 0 001 @ 02127808 n 0000 | large feline; "
        '"a lion roars"  '
    )
    assert builder.parse_synset(line, Path("data.noun")) == ("02129165-n", "noun.animal", "large feline")
    satellite = "00021110 44 s 01 smoked 0 000 | cured by smoking"
    assert builder.parse_synset(satellite, Path("data.adj"))[:2] == ("00021110-a", "adj.ppl")
    assert builder.split_of("02129165-n") == builder.split_of("02129165-n")
    shares = [builder.split_of(f"{i:08d}-n") for i in range(3000)]
    assert abs(shares.count("train") / 3000 - 0.8) < 0.03
