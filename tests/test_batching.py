"""BucketBatchSampler and collate: determinism, coverage, budgets, ranks, padding."""

from __future__ import annotations

import functools
import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from rnnkit.data.batching import Batch, BucketBatchSampler, collate, padding_fraction


def random_lengths(n: int, seed: int = 0, low: int = 1, high: int = 200) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(n)]


def epoch(sampler: BucketBatchSampler, number: int) -> list[list[int]]:
    sampler.set_epoch(number)
    return list(sampler)


# --- determinism --------------------------------------------------------------------------------------------


def test_same_seed_and_epoch_give_the_same_batches():
    lengths = random_lengths(500)
    a = BucketBatchSampler(lengths, 16, seed=3)
    b = BucketBatchSampler(lengths, 16, seed=3)
    assert epoch(a, 2) == epoch(b, 2)
    # going back to an epoch repeats it
    assert epoch(a, 0) == epoch(BucketBatchSampler(lengths, 16, seed=3), 0)


def test_epochs_and_seeds_change_the_batches():
    lengths = random_lengths(500)
    sampler = BucketBatchSampler(lengths, 16, seed=3, pool_batches=4)
    first, second = epoch(sampler, 0), epoch(sampler, 1)
    assert first != second
    # new company for the examples, not just a new order of the same batches
    assert {tuple(sorted(b)) for b in first} != {tuple(sorted(b)) for b in second}
    assert epoch(BucketBatchSampler(lengths, 16, seed=4, pool_batches=4), 0) != first


def test_without_shuffle_batches_are_sorted_by_length_and_fixed():
    lengths = random_lengths(100)
    sampler = BucketBatchSampler(lengths, 8, shuffle=False)
    flat = [i for b in epoch(sampler, 0) for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert epoch(sampler, 5) == epoch(sampler, 0)


# --- coverage -----------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 60), max_size=300),
    batch_size=st.integers(1, 40),
    max_tokens=st.one_of(st.none(), st.integers(1, 400)),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32),
    pool_batches=st.integers(1, 8),
)
def test_every_example_exactly_once_per_epoch(lengths, batch_size, max_tokens, shuffle, seed, pool_batches):
    sampler = BucketBatchSampler(
        lengths, batch_size, max_tokens=max_tokens, shuffle=shuffle, seed=seed, pool_batches=pool_batches
    )
    for number in (0, 1):
        batches = epoch(sampler, number)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(1 <= len(b) <= batch_size for b in batches)
        assert len(sampler) == len(batches)


def test_batches_hold_batch_size_rows_except_one():
    batches = epoch(BucketBatchSampler(random_lengths(1000), 64, pool_batches=5), 0)
    sizes = Counter(len(b) for b in batches)
    assert sizes == {64: 15, 1000 - 15 * 64: 1}


def test_drop_last_drops_the_short_batch():
    sampler = BucketBatchSampler(random_lengths(100), 32, drop_last=True)
    batches = epoch(sampler, 0)
    assert [len(b) for b in batches] == [32, 32, 32] and len(sampler) == 3


# --- token budget -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 8])
def test_token_budget_is_respected(batch_size):
    lengths = random_lengths(800, low=1, high=120) + [500]  # one example longer than the whole budget
    sampler = BucketBatchSampler(lengths, batch_size, max_tokens=400, seed=1)
    batches = epoch(sampler, 0)
    for batch in batches:
        cost = len(batch) * max(lengths[i] for i in batch)
        assert cost <= 400 or len(batch) == 1
        assert batch_size is None or len(batch) <= batch_size
    assert [b for b in batches if 800 in b] == [[800]]
    rows = Counter(len(b) for b in batches)
    assert max(rows) > 8 if batch_size is None else max(rows) == 8  # short sequences fill wide batches


def test_token_budget_batches_are_mostly_full():
    lengths = random_lengths(2000, low=5, high=60)
    batches = epoch(BucketBatchSampler(lengths, None, max_tokens=1000), 0)
    used = [len(b) * max(lengths[i] for i in b) for b in batches]
    assert sum(used) / (1000 * len(used)) > 0.85


def test_len_follows_the_epoch_with_a_token_budget():
    sampler = BucketBatchSampler(random_lengths(700), None, max_tokens=600, pool_batches=3)
    for number in range(3):
        sampler.set_epoch(number)
        assert len(sampler) == len(list(sampler))


# --- ranks --------------------------------------------------------------------------------------------------


def shards(lengths, replicas, **kwargs):
    samplers = [BucketBatchSampler(lengths, num_replicas=replicas, rank=r, **kwargs) for r in range(replicas)]
    return [epoch(s, 1) for s in samplers]


def test_ranks_get_equal_counts_and_disjoint_shards_covering_everything():
    lengths = random_lengths(640)
    per_rank = shards(lengths, 4, batch_size=16)  # 40 batches: 10 each, no repeats needed
    assert [len(b) for b in per_rank] == [10, 10, 10, 10]
    seen = [i for batches in per_rank for b in batches for i in b]
    assert sorted(seen) == list(range(640))


@pytest.mark.parametrize("kwargs", [{"batch_size": 16}, {"batch_size": None, "max_tokens": 900}])
def test_uneven_batch_counts_are_filled_by_repeating_batches(kwargs):
    lengths = random_lengths(650)
    whole = epoch(BucketBatchSampler(lengths, **kwargs), 1)
    per_rank = shards(lengths, 3, **kwargs)
    counts = {len(b) for b in per_rank}
    assert counts == {-(-len(whole) // 3)}  # ceil: every rank runs the same number of steps
    flat = [tuple(b) for batches in per_rank for b in batches]
    assert {tuple(b) for b in whole} == set(flat)  # nothing lost...
    assert len(flat) - len(set(flat)) == len(flat) - len(whole) < 3  # ...and only the filler repeated


def test_drop_last_with_ranks_drops_the_left_over_batches():
    lengths = random_lengths(650)
    per_rank = shards(lengths, 3, batch_size=16, drop_last=True)  # 40 full batches -> 13 each, 1 dropped
    assert [len(b) for b in per_rank] == [13, 13, 13]
    seen = [i for batches in per_rank for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 39 * 16


# --- padding ------------------------------------------------------------------------------------------------


def test_bucketing_wastes_little_padding_random_batches_waste_much():
    lengths = random_lengths(6400, seed=1, low=5, high=200)
    bucketed = epoch(BucketBatchSampler(lengths, 64), 0)
    shuffled = list(range(len(lengths)))
    random.Random(0).shuffle(shuffled)
    plain = [shuffled[i : i + 64] for i in range(0, len(shuffled), 64)]
    assert padding_fraction(bucketed, lengths) < 0.05
    assert padding_fraction(plain, lengths) > 0.4


# --- collate ------------------------------------------------------------------------------------------------


def test_collate_pads_and_keeps_lengths_on_cpu():
    batch = collate([([4, 5, 6], 2), ([7], 0), ([8, 9], 1)], pad_id=3)
    assert batch.ids.tolist() == [[4, 5, 6], [7, 3, 3], [8, 9, 3]]
    assert batch.ids.dtype == batch.lengths.dtype == batch.labels.dtype == torch.int64
    assert batch.lengths.tolist() == [3, 1, 2] and batch.lengths.device.type == "cpu"
    assert batch.labels.tolist() == [2, 0, 1] and len(batch) == 3


def test_collate_truncates_to_max_len():
    batch = collate([(list(range(1, 11)), None), ([1, 2], None)], max_len=4)
    assert batch.ids.shape == (2, 4) and batch.lengths.tolist() == [4, 2] and batch.labels is None
    assert batch.ids[0].tolist() == [1, 2, 3, 4]


def test_collate_errors():
    with pytest.raises(ValueError, match="at least one item, got 0"):
        collate([])
    with pytest.raises(ValueError, match="item 1 has none"):
        collate([([1], 0), ([], 1)])
    with pytest.raises(ValueError, match="1 of 2 have none"):
        collate([([1], 0), ([2], None)])
    with pytest.raises(ValueError, match="max_len must be at least 1, got 0"):
        collate([([1], 0)], max_len=0)


def test_batch_to_moves_ids_and_labels_only():
    batch = collate([([1, 2], 0)]).to("meta")
    assert batch.ids.device.type == batch.labels.device.type == "meta"
    assert batch.lengths.device.type == "cpu"


def test_sampler_and_collate_drive_a_dataloader_with_workers():
    items = [([1] * n, n % 3) for n in random_lengths(60, high=20)]
    sampler = BucketBatchSampler([len(ids) for ids, _ in items], 8, seed=0)
    loader = DataLoader(items, batch_sampler=sampler, collate_fn=functools.partial(collate, max_len=12),
                        num_workers=1)  # fmt: skip
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches) and len(batches) == len(sampler) == 8
    assert sum(len(b) for b in batches) == 60 and max(b.ids.shape[1] for b in batches) <= 12


# --- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": None}, "give batch_size or max_tokens"),
        ({"batch_size": 4, "max_tokens": -5}, "max_tokens must be a positive integer, got -5"),
        ({"batch_size": 4, "num_replicas": 2, "rank": 2}, r"rank must be in 0\.\.1, got 2"),
        ({"batch_size": 4, "seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BucketBatchSampler([1, 2, 3], **kwargs)


def test_negative_lengths_are_rejected():
    with pytest.raises(ValueError, match="lengths must be non-negative, got -2"):
        BucketBatchSampler([1, -2], 4)
