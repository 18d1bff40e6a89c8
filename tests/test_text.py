"""Tokenizers, vocabulary, TextEncoder and LabelEncoder: behaviour and JSON round trips."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.text import LabelEncoder, TextEncoder, Vocabulary
from rnnkit.data.tokenizers import (
    BasicEnglishTokenizer,
    BPETokenizer,
    CharTokenizer,
    build_tokenizer,
    tokenizer_from_dict,
)
from rnnkit.errors import ConfigError, DataError, RunFolderError

# torchtext's basic_english, as torchtext wrote it (torchtext/data/utils.py): the reference we must match.
_TORCHTEXT_RULES = [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " "),
]  # fmt: skip


def torchtext_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _TORCHTEXT_RULES:
        line = re.sub(pattern, replacement, line)
    return line.split()


TEXTS = [
    "Wall St. Bears Claw Back Into the Black (Reuters)",
    "Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics, are seeing green again.",
    "Oil prices soar to all-time record; posing new menace to US economy!",
    'He said: "Is it <br />really over?"',
    "Ünïcödé café naïve — 東京 ok",
    'dropping the quote completes a tag: <br "/>here',
]


@pytest.mark.parametrize("text", TEXTS)
def test_basic_english_matches_torchtext(text):
    assert BasicEnglishTokenizer().tokenize(text) == torchtext_basic_english(text)


def test_basic_english_splits_punctuation_like_the_lesson():
    tokens = BasicEnglishTokenizer().tokenize(
        "Reuters - Wall Street's band, (ultra-cynics) are seeing green!"
    )
    assert tokens == ["reuters", "-", "wall", "street", "'", "s", "band", ",", "(", "ultra-cynics", ")",
                      "are", "seeing", "green", "!"]  # fmt: skip


PIECES = st.sampled_from([*"aZé '\".,()!?;:<>/br \t\n-", "<br />", "<BR />", "<br", "/>"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_basic_english_matches_torchtext_on_any_mix_of_its_punctuation(text):
    assert BasicEnglishTokenizer().tokenize(text) == torchtext_basic_english(text)


def test_char_tokenizer_keeps_every_character():
    text = "To be,\n or not\tto be — ünïcode"
    assert CharTokenizer().detokenize(CharTokenizer().tokenize(text)) == text


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TEXTS * 5, vocab_size=300)


def test_bpe_round_trips_text_including_unseen_characters(bpe):
    for text in [*TEXTS, "an unseen word: zyxwv ✓"]:
        assert bpe.detokenize(bpe.tokenize(text)) == text


def test_bpe_learns_merges_from_the_training_texts(bpe):
    # "reuters" occurs in the training texts, so merges cover it; single bytes alone would give 7 pieces.
    assert len(bpe.tokenize("Reuters")) < len("Reuters")


@pytest.mark.parametrize("name", ["basic_english", "char", "bpe"])
def test_tokenizer_dict_round_trip_through_json(name):
    tok = build_tokenizer(name, TEXTS * 5, bpe_vocab_size=300)
    rebuilt = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(rebuilt) is type(tok)
    for text in TEXTS:
        assert rebuilt.tokenize(text) == tok.tokenize(text)


def test_unknown_tokenizer_names_the_known_ones():
    with pytest.raises(
        ConfigError, match="unknown tokenizer 'spacy'; choose one of: basic_english, char, bpe"
    ):
        build_tokenizer("spacy")
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        tokenizer_from_dict({"name": "spacy"})


def test_bpe_vocab_size_must_exceed_the_byte_alphabet():
    with pytest.raises(ConfigError, match="more than the 256 single bytes, got 100"):
        build_tokenizer("bpe", TEXTS, bpe_vocab_size=100)


# --- Vocabulary ---------------------------------------------------------------------------------------------


def test_vocab_orders_by_frequency_then_token():
    vocab = Vocabulary.build([["b", "a", "c"], ["c", "b", "d"], ["c"]])
    assert vocab.itos == ["<pad>", "<unk>", "c", "b", "a", "d"]  # c:3, then b:2, then a/d:1 by token
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, None, None)


def test_vocab_order_does_not_depend_on_input_order():
    docs = [["x", "y"], ["y", "z"], ["w", "x"]]
    assert Vocabulary.build(docs).itos == Vocabulary.build(docs[::-1]).itos


def test_vocab_min_freq_and_max_size():
    docs = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert Vocabulary.build(docs, min_freq=2).itos == ["<pad>", "<unk>", "a", "b", "c"]
    assert Vocabulary.build(docs, max_size=4).itos == ["<pad>", "<unk>", "a", "b"]  # specials count
    with pytest.raises(ValueError, match="room for the 2 specials, got 1"):
        Vocabulary.build(docs, max_size=1)
    with pytest.raises(ValueError, match="min_freq must be at least 1, got 0"):
        Vocabulary.build(docs, min_freq=0)


def test_lm_vocab_has_bos_and_eos():
    vocab = Vocabulary.build([["a"]], lm=True)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (vocab.bos_id, vocab.eos_id, vocab["a"]) == (2, 3, 4)


def test_special_token_text_gets_no_second_id():
    vocab = Vocabulary.build([["<pad>", "<unk>", "x"]])
    assert vocab.itos == ["<pad>", "<unk>", "x"]


def test_vocab_json_round_trip_and_lookup():
    vocab = Vocabulary.build([["a", "b", "a"]], lm=True)
    rebuilt = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert rebuilt.itos == vocab.itos and rebuilt.lm
    assert rebuilt.lookup(["a", "zzz", "b"]) == [4, 1, 5]
    assert rebuilt.tokens([4, 5]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"token id must be in 0\.\.5, got 6"):
        rebuilt.tokens([6])


def test_vocab_rejects_bad_itos():
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "<pad>", "<unk>"])
    with pytest.raises(ValueError, match="repeated: \\['a'\\]"):
        Vocabulary(["<pad>", "<unk>", "a", "a"])


# --- TextEncoder --------------------------------------------------------------------------------------------


def test_encoder_vocabulary_comes_from_the_training_texts_only():
    enc = TextEncoder.fit(["the cat sat", "the cat ran"])
    assert enc.encode("the dog sat") == [enc.vocab["the"], enc.vocab.unk_id, enc.vocab["sat"]]
    assert "dog" not in enc.vocab
    assert enc.tokenize("The dog.") == ["the", "dog", "."]  # tokens are spelled out before the vocabulary


@pytest.mark.parametrize(
    ("tokenizer", "text", "decoded"),
    [
        ("basic_english", "The cat, sat.", "the cat , sat ."),
        ("char", "the cat", "the cat"),
        ("bpe", "The cat, sat.", "The cat, sat."),
    ],
)
def test_encoder_decode_joins_the_tokenizers_way(tokenizer, text, decoded):
    enc = TextEncoder.fit(
        ["The cat, sat.", "the cat sat on the mat"] * 3, tokenizer=tokenizer, bpe_vocab_size=300
    )
    assert enc.decode(enc.encode(text)) == decoded


def test_decode_skips_padding_and_sentence_markers_but_keeps_unk():
    enc = TextEncoder.fit(["ab"], tokenizer="char", lm=True)
    v = enc.vocab
    assert enc.decode([v.bos_id, v["a"], v.unk_id, v["b"], v.eos_id, v.pad_id]) == "a<unk>b"
    assert enc.decode([v.bos_id, v["a"]], skip_special=False) == "<bos>a"


@pytest.mark.parametrize("tokenizer", ["basic_english", "char", "bpe"])
def test_encoder_vocab_json_round_trip(tokenizer):
    train = ["Oil prices soar to record", "Stocks fall as oil soars", "Team wins the cup"] * 4
    enc = TextEncoder.fit(train, tokenizer=tokenizer, min_freq=2, bpe_vocab_size=300)
    rebuilt = TextEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert rebuilt.vocab.itos == enc.vocab.itos
    assert len(rebuilt) == len(enc)
    for text in [*train, "Unseen words in a new sentence!"]:
        assert rebuilt.encode(text) == enc.encode(text)
    assert rebuilt.encode_many(train) == [enc.encode(t) for t in train]


def test_encoder_fit_errors():
    with pytest.raises(DataError, match="from 0 training texts"):
        TextEncoder.fit([])
    with pytest.raises(ConfigError, match="unknown tokenizer 'words'"):
        TextEncoder.fit(["a"], tokenizer="words")


def test_encoder_from_dict_rejects_other_formats():
    with pytest.raises(RunFolderError, match="vocab.json: expected format 1, got 7"):
        TextEncoder.from_dict({"format": 7})
    with pytest.raises(RunFolderError, match="vocab.json: cannot rebuild"):
        TextEncoder.from_dict({"format": 1, "tokenizer": {"name": "char"}, "vocab": {"itos": ["a"]}})


# --- LabelEncoder -------------------------------------------------------------------------------------------


def test_label_encoder_sorts_names():
    enc = LabelEncoder().fit(["World", "Sports", "Business", "Sports", "Sci/Tech"])
    assert enc.names == ["Business", "Sci/Tech", "Sports", "World"]
    assert [enc.encode(n) for n in enc.names] == [0, 1, 2, 3]
    assert enc.decode(2) == "Sports" and len(enc) == 4
    assert LabelEncoder().fit(["10", "9", "1"]).names == ["1", "9", "10"]  # integers sort as numbers


def test_label_encoder_rebuilds_from_names():
    enc = LabelEncoder().fit(["b", "a"])
    assert LabelEncoder(json.loads(json.dumps(enc.names))).encode("b") == 1


def test_unseen_label_names_it_the_place_and_the_known_ones():
    enc = LabelEncoder().fit(["neg", "pos"])
    with pytest.raises(DataError) as info:
        enc.encode("neutral", path="test.csv", line=7)
    assert str(info.value) == "test.csv:7: label 'neutral' was not seen in training (known labels: neg, pos)"


def test_unseen_label_truncates_a_long_list():
    enc = LabelEncoder().fit([f"class{i:02d}" for i in range(40)])
    with pytest.raises(DataError, match=r"class09, … and 30 more\)$"):
        enc.encode("other")


def test_label_encoder_needs_labels():
    with pytest.raises(DataError, match="2 have none"):
        LabelEncoder().fit(["a", None, None])
    with pytest.raises(DataError, match="0 training examples"):
        LabelEncoder().fit([])
    with pytest.raises(ValueError, match=r"label index must be in 0\.\.0, got 3"):
        LabelEncoder(["a"]).decode(3)
