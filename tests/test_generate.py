"""Text generation: greedy and sampled decoding, seeds, streaming, state stepping, and bad options."""

import logging

import pytest
import torch

from rnnkit.config import TrainConfig
from rnnkit.data import TextEncoder
from rnnkit.errors import ConfigError
from rnnkit.generate import _Detokenizer, check_options, generate, sample_ids, sample_next, stream
from rnnkit.models.language_model import LanguageModel
from rnnkit.training.lm import LanguageModelTask, train_batches
from rnnkit.training.loop import Trainer

LINE = "a small rnn sings: do re mi fa so!\n"


@pytest.fixture(scope="module")
def memorised():
    """A character model trained until it knows LINE by heart (about a second on one core)."""
    text = LINE * 40
    encoder = TextEncoder.fit([text], tokenizer="char", lm=True)
    torch.manual_seed(0)
    model = LanguageModel(len(encoder), cell="lstm", embed_dim=16, hidden_dim=48)
    cfg = TrainConfig(epochs=25, lr=2e-2, device="cpu", threads=1, seed=0)
    Trainer(model, LanguageModelTask("cpu", char_level=True), train_batches(encoder.encode(text), 4, 35),
            config=cfg).fit()  # fmt: skip
    return model.eval(), encoder


def test_greedy_generation_reproduces_the_memorised_text(memorised):
    model, encoder = memorised
    text = generate(model, encoder, "a small", length=2 * len(LINE), temperature=0)
    assert text == (LINE * 3)[: len("a small") + 2 * len(LINE)]  # the prime is how LINE starts


def test_empty_prime_starts_after_a_line_break(memorised):
    model, encoder = memorised
    assert generate(model, encoder, "", length=len(LINE), temperature=0) == LINE


def test_a_seed_makes_sampling_reproducible(memorised):
    model, encoder = memorised
    options = dict(length=200, temperature=2.0)
    a = generate(model, encoder, "do", seed=7, **options)
    assert a == generate(model, encoder, "do", seed=7, **options)
    assert a != generate(model, encoder, "do", seed=8, **options)  # hot sampling: seeds differ


def test_streaming_yields_the_same_text_as_the_batch_call(memorised):
    model, encoder = memorised
    pieces = list(stream(model, encoder, "re mi", length=60, temperature=0.8, top_k=5, seed=3))
    assert pieces[0] == "re mi" and len(pieces) == 61  # the prime, then one piece per character
    assert "".join(pieces) == generate(model, encoder, "re mi", length=60, temperature=0.8, top_k=5, seed=3)


def test_the_state_is_stepped_never_recomputed(memorised):
    """The prime is read in one call; then every token is one call on that token alone."""
    model, encoder = memorised
    shapes = []
    handle = model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    try:
        generate(model, encoder, "do re", length=30, seed=0)
    finally:
        handle.remove()
    assert shapes == [(1, 5)] + [(1, 1)] * 29  # the 30th token needs no further call


def test_one_token_steps_leave_the_kernel_settings_alone(memorised):
    """Generation switches oneDNN off around each one-token call only (it is slow for one token)."""
    model, encoder = memorised
    before = torch.backends.mkldnn.enabled
    pieces = stream(model, encoder, "do", length=20, seed=0)
    next(pieces), next(pieces), next(pieces)
    assert torch.backends.mkldnn.enabled == before  # also between the pieces
    pieces.close()
    assert torch.backends.mkldnn.enabled == before


def test_generation_restores_training_mode(memorised):
    model, encoder = memorised
    model.train()
    try:
        pieces = stream(model, encoder, "do", length=3, seed=0)
        next(pieces)
        next(pieces)
        assert not model.training  # sampled with dropout off
        list(pieces)
        assert model.training
    finally:
        model.eval()


def test_out_of_vocabulary_prime_is_read_as_unk_with_one_warning(memorised, caplog):
    model, encoder = memorised
    with caplog.at_level(logging.WARNING, logger="rnnkit.generate"):
        text = generate(model, encoder, "Zoë sang", length=10, seed=0)
    assert text.startswith("Zoë sang") and len(text) == len("Zoë sang") + 10
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "2 token(s) outside the model's vocabulary ('Z', 'ë')" in warnings[0]
    assert "<unk>" in warnings[0]


# --- sampling rules --------------------------------------------------------------------------------


def test_sample_next_rules():
    logits = torch.tensor([[1.0, 4.0, 3.0, 0.0, 2.0]])
    assert sample_next(logits, temperature=0).item() == 1
    g = torch.Generator().manual_seed(0)
    draws = lambda **kw: {sample_next(logits, generator=g, **kw).item() for _ in range(300)}  # noqa: E731
    assert draws() == {0, 1, 2, 3, 4}
    assert draws(top_k=2) == {1, 2}
    assert draws(top_k=1) == {1}
    # probabilities ≈ .64 .24 .09 .03 .01 (sorted): 0.8 of the mass needs the top 2, 0.9 the top 3
    assert draws(top_p=0.8) == {1, 2}
    assert draws(top_p=0.9) == {1, 2, 4}
    assert draws(top_p=0.01) == {1}
    assert draws(temperature=0.05) == {1}  # cold sampling is nearly greedy


def test_special_tokens_are_never_sampled():
    class Favours(torch.nn.Module):
        """A fake language model that puts almost all probability on token 0 (<pad>) and 1 (<unk>)."""

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, ids, state=None):
            logits = torch.zeros(ids.shape[0], ids.shape[1], 6)
            logits[..., :2] = 50.0
            return logits, state

    ids = list(sample_ids(Favours(), [4], 50, seed=0, banned=[0, 1, 2, 3]))
    assert set(ids) <= {4, 5}


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(length=0), "--length must be ≥ 1 token, got 0"),
        (dict(length=-3), "--length must be ≥ 1 token, got -3"),
        (dict(length=5, temperature=-0.5), "--temperature must be ≥ 0 (0 = greedy), got -0.5"),
        (dict(length=5, temperature=float("nan")), "--temperature must be ≥ 0"),
        (dict(length=5, top_k=0), "--top-k must be ≥ 1, got 0"),
        (dict(length=5, top_p=0.0), "--top-p must be in (0, 1], got 0.0"),
        (dict(length=5, top_p=1.5), "--top-p must be in (0, 1], got 1.5"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError) as e:
        check_options(**options)
    assert message in str(e.value)
    encoder = TextEncoder.fit(["abcdef"], "char", lm=True)
    model = LanguageModel(len(encoder), embed_dim=4, hidden_dim=4)
    with pytest.raises(ConfigError):  # raised by the call itself, before the first piece
        stream(model, encoder, "ab", **options)


# --- text pieces for every tokenizer ---------------------------------------------------------------


@pytest.mark.parametrize("tokenizer", ["char", "basic_english", "bpe"])
def test_pieces_join_to_the_decoded_text(tokenizer):
    texts = ["the naïve café served crème brûlée ☃ to the zoë of the north", "the café of the north"] * 5
    encoder = TextEncoder.fit(texts, tokenizer=tokenizer, lm=True, bpe_vocab_size=300)
    prime, rest = encoder.encode("the naïve"), encoder.encode(texts[0])
    detok = _Detokenizer(encoder, prime)
    pieces = [detok.push(i) for i in rest] + [detok.flush()]
    assert encoder.decode(prime) + "".join(pieces) == encoder.decode(prime + rest)
    empty = _Detokenizer(encoder, [])
    assert "".join([empty.push(i) for i in rest] + [empty.flush()]) == encoder.decode(rest)


def test_word_model_generates_spaced_words():
    encoder = TextEncoder.fit(["the cat sat on the mat"], tokenizer="basic_english", lm=True)
    torch.manual_seed(0)
    model = LanguageModel(len(encoder), embed_dim=8, hidden_dim=8).eval()
    text = generate(model, encoder, "The cat", length=6, seed=1)
    words = text.split(" ")
    assert text.startswith("The cat ") and len(words) == 8
    assert set(words[2:]) <= set(encoder.vocab.itos[4:])
