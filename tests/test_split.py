"""train_valid_split: stratified, seeded, never empties a class from training."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.readers import Example
from rnnkit.data.split import train_valid_split
from rnnkit.errors import DataError


def make(counts: dict[str | None, int]) -> list[Example]:
    """Examples with the given number per label, interleaved, each text unique."""
    examples = []
    for label, n in counts.items():
        examples += [Example(f"{label} {i}", label) for i in range(n)]
    random.Random(0).shuffle(examples)
    return examples


def test_split_is_stratified_by_label():
    examples = make({"big": 600, "mid": 300, "small": 100})
    train, valid = train_valid_split(examples, fraction=0.1, seed=0)
    assert Counter(e.label for e in valid) == {"big": 60, "mid": 30, "small": 10}
    assert len(train) == 900


def test_split_is_a_partition_in_the_original_order():
    examples = make({"a": 37, "b": 23, "c": 5})
    train, valid = train_valid_split(examples, fraction=0.1, seed=1)
    assert len(valid) == round(0.1 * 65)
    assert sorted(e.text for e in train + valid) == sorted(e.text for e in examples)
    position = {e.text: i for i, e in enumerate(examples)}
    for part in (train, valid):
        assert [position[e.text] for e in part] == sorted(position[e.text] for e in part)


def test_same_seed_same_split_other_seed_other_split():
    examples = make({"a": 50, "b": 50})
    first = train_valid_split(examples, seed=7)[1]
    assert train_valid_split(examples, seed=7)[1] == first
    assert train_valid_split(examples, seed=8)[1] != first


def test_rare_classes_stay_in_training():
    examples = make({"common": 200, "pair": 2, "single": 1})
    for seed in range(20):
        train, valid = train_valid_split(examples, fraction=0.5, seed=seed)
        kept = Counter(e.label for e in train)
        assert kept["pair"] >= 1 and kept["single"] == 1


def test_tiny_data_still_gets_one_validation_example():
    train, valid = train_valid_split(make({"a": 3, "b": 3}), fraction=0.05)
    assert len(valid) == 1 and len(train) == 5


def test_unlabelled_examples_are_one_group():
    train, valid = train_valid_split(make({None: 40}), fraction=0.1)
    assert (len(train), len(valid)) == (36, 4)


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=8).filter(lambda c: any(n >= 2 for n in c)),
    fraction=st.floats(0.05, 0.5),
    seed=st.integers(0, 1000),
)
def test_any_class_with_two_examples_keeps_one_in_training(counts, fraction, seed):
    examples = make({f"c{i}": n for i, n in enumerate(counts)})
    train, valid = train_valid_split(examples, fraction=fraction, seed=seed)
    kept = Counter(e.label for e in train)
    assert all(kept[f"c{i}"] >= 1 for i in range(len(counts)))
    assert 1 <= len(valid) <= max(1, round(fraction * len(examples)))
    assert len(train) + len(valid) == len(examples)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_must_be_a_proper_share(fraction):
    with pytest.raises(ValueError, match=f"strictly between 0 and 1, got {fraction}"):
        train_valid_split(make({"a": 10}), fraction=fraction)


def test_too_little_data_to_hold_out_says_what_to_do():
    with pytest.raises(DataError, match="from 2 training examples: no label has two; give validation data"):
        train_valid_split(make({"a": 1, "b": 1}))
