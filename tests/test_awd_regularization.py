"""AWD-LSTM's regularisation: the layers' weight_drop and locked_dropout, and rnnkit.nn.regularize."""

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM, RNN, LockedDropout, ar_loss, embedding_dropout, locked_dropout, tar_loss
from rnnkit.nn.recurrent import _Recurrent

LAYERS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
TORCH = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}
LENGTHS = torch.tensor([6, 2, 5, 1])  # ragged, unsorted


def pair(name, **kwargs):
    """The same layer twice, ``"fast"`` and ``"reference"``, with the same parameters."""
    torch.manual_seed(0)
    fast = LAYERS[name](5, 7, batch_first=True, backend="fast", **kwargs)
    reference = LAYERS[name](5, 7, batch_first=True, backend="reference", **kwargs)
    reference.load_state_dict(fast.state_dict())
    return fast, reference


def run(layer, x, seed, **call):
    """``(output, h_n [, c_n])`` of one call under ``seed``."""
    torch.manual_seed(seed)
    output, final = layer(x, **call)
    return (output, *final) if isinstance(final, tuple) else (output, final)


def assert_same(a, b, atol=1e-5):
    for left, right in zip(a, b, strict=True):
        torch.testing.assert_close(left, right, atol=atol, rtol=1e-5)


# -- constructor ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LAYERS))
def test_the_arguments_are_stored_and_shown(name):
    layer = LAYERS[name](4, 6, num_layers=2, dropout=0.2, weight_drop=0.5, locked_dropout=True)
    assert (layer.weight_drop, layer.locked_dropout) == (0.5, True)
    assert "weight_drop=0.5, locked_dropout=True" in repr(layer)
    plain = LAYERS[name](4, 6)
    assert (plain.weight_drop, plain.locked_dropout) == (0.0, False)
    assert "weight_drop" not in repr(plain) and "locked_dropout" not in repr(plain)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, True, "0.5", None])
def test_weight_drop_must_be_a_probability_below_one(value):
    with pytest.raises(ValueError, match=r"weight_drop should be a number in range \[0, 1\).*got"):
        LSTM(4, 6, weight_drop=value)


def test_locked_dropout_must_be_a_bool():
    with pytest.raises(TypeError, match="locked_dropout should be of type bool, got: int"):
        GRU(4, 6, locked_dropout=1)


@pytest.mark.parametrize("name", list(LAYERS))
def test_state_dict_names_are_unchanged(name):
    """No new parameters or buffers: the names are torch.nn's, with or without regularisation."""
    ours = LAYERS[name](
        4, 6, num_layers=2, bidirectional=True, dropout=0.1, weight_drop=0.3, locked_dropout=True
    )
    theirs = TORCH[name](4, 6, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(dict(ours.named_buffers())) == []
    theirs.load_state_dict(ours.state_dict())


def test_pickle_and_deepcopy_keep_the_arguments():
    layer = LSTM(4, 6, num_layers=2, dropout=0.1, weight_drop=0.25, locked_dropout=True)
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    for twin in (
        pickle.loads(pickle.dumps(layer)),
        copy.deepcopy(layer),
        torch.load(buffer, weights_only=False),
    ):
        assert (twin.weight_drop, twin.locked_dropout) == (0.25, True)
        x = torch.randn(3, 2, 4)
        assert torch.equal(twin.eval()(x)[0], layer.eval()(x)[0])


def test_a_layer_pickled_before_the_arguments_existed_loads_without_them():
    layer = GRU(4, 6)
    del layer.weight_drop, layer.locked_dropout  # what an older pickle holds
    twin = pickle.loads(pickle.dumps(layer))
    assert (twin.weight_drop, twin.locked_dropout) == (0.0, False)
    twin.train()(torch.randn(3, 2, 4))


# -- weight drop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_weight_drop_draws_a_new_mask_every_call_in_training(name, backend):
    layer = LAYERS[name](5, 7, batch_first=True, weight_drop=0.5, backend=backend)
    x = torch.randn(3, 6, 5)
    first, second = layer(x)[0], layer(x)[0]
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_weight_drop_does_nothing_in_eval(name, backend):
    torch.manual_seed(0)
    dropped = LAYERS[name](5, 7, num_layers=2, weight_drop=0.5, backend=backend).eval()
    plain = LAYERS[name](5, 7, num_layers=2, backend=backend).eval()
    plain.load_state_dict(dropped.state_dict())
    x = torch.randn(6, 3, 5)
    assert_same(run(dropped, x, 1), run(plain, x, 2), atol=0)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_weight_drop_is_dropconnect_on_weight_hh(backend):
    """The output is torch.nn.LSTM's with ``W_hh ⊙ M / (1 − p)`` (the mask drawn first, as F.dropout
    draws it); the gradient reaches the raw ``weight_hh_l0``, zero exactly where ``M`` dropped, and
    the parameter itself is untouched."""
    p = 0.4
    torch.manual_seed(0)
    ours = LSTM(5, 7, batch_first=True, weight_drop=p, backend=backend)
    before = ours.weight_hh_l0.detach().clone()
    x = torch.randn(3, 6, 5)
    torch.manual_seed(1)
    output, (h_n, c_n) = ours(x)
    torch.manual_seed(1)
    kept = F.dropout(torch.ones_like(before), p) != 0  # the mask of the first (only) weight_hh
    assert 0 < kept.float().mean() < 1

    theirs = nn.LSTM(5, 7, batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        theirs.weight_hh_l0.mul_(kept / (1 - p))
    expected, _ = theirs(x)
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-5)

    assert torch.equal(ours.weight_hh_l0, before)
    (output.sum() + c_n.sum()).backward()
    grad = ours.weight_hh_l0.grad
    assert grad is not None and bool(grad[kept].ne(0).any())
    assert bool(grad[~kept].eq(0).all())
    assert ours.weight_ih_l0.grad.ne(0).any()


CASES = [
    pytest.param(name, kwargs, lengths, id=f"{name}-{label}-{'ragged' if lengths else 'full'}")
    for name in LAYERS
    for label, kwargs in [
        ("one-layer", {}),
        ("bidirectional", {"bidirectional": True}),
        ("two-layers", {"num_layers": 2}),
        ("two-layers-bidirectional", {"num_layers": 2, "bidirectional": True}),
    ]
    for lengths in (False, True)
]


@pytest.mark.parametrize("name, kwargs, ragged", CASES)
def test_weight_drop_fast_equals_reference_under_the_same_seed(name, kwargs, ragged):
    fast, reference = pair(name, weight_drop=0.5, **kwargs)
    x = torch.randn(4, 6, 5)
    call = {"lengths": LENGTHS} if ragged else {}
    assert_same(run(fast, x, 3, **call), run(reference, x, 3, **call))
    assert not torch.allclose(run(fast, x, 3, **call)[0], run(fast, x, 4, **call)[0])  # the seed matters


@pytest.mark.parametrize("bidirectional", [False, True])
def test_weight_drop_with_a_projection_and_an_initial_state(bidirectional):
    fast, reference = pair("LSTM", num_layers=2, proj_size=3, weight_drop=0.3, bidirectional=bidirectional)
    d = 2 if bidirectional else 1
    state = (torch.randn(2 * d, 4, 3), torch.randn(2 * d, 4, 7))
    x = torch.randn(4, 6, 5)
    for call in ({}, {"lengths": LENGTHS}):
        assert_same(run(fast, x, 5, hx=state, **call), run(reference, x, 5, hx=state, **call))


@pytest.mark.parametrize("name", list(LAYERS))
def test_weight_drop_on_a_packed_sequence(name):
    fast, reference = pair(name, weight_drop=0.5, bidirectional=True)
    x = torch.randn(4, 6, 5)
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    torch.manual_seed(7)
    out_fast, _ = fast(packed)
    torch.manual_seed(7)
    out_reference, _ = reference(packed)
    torch.testing.assert_close(out_fast.data, out_reference.data, atol=1e-5, rtol=1e-5)
    padded, _ = pad_packed_sequence(out_fast, batch_first=True)
    assert padded.shape == (4, 6, 14)


def test_weight_drop_on_the_packed_path_in_no_grad(monkeypatch):
    """GRU inference without grad on CPU may pack; in training mode the mask still applies."""
    fast, reference = pair("GRU", weight_drop=0.5, bidirectional=True)
    monkeypatch.setattr(type(fast), "_use_packing", lambda self, x, lengths: True)
    x = torch.randn(4, 6, 5)
    with torch.no_grad():
        assert_same(run(fast, x, 8, lengths=LENGTHS), run(reference, x, 8, lengths=LENGTHS))


def no_reference(monkeypatch):
    """Make the step-by-step reference path raise: the fast path must not take it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the fast path ran the reference path's per-step loop")

    monkeypatch.setattr(_Recurrent, "_forward_reference", refuse)
    monkeypatch.setattr(_Recurrent, "_scan", refuse)


@pytest.mark.parametrize("name", list(LAYERS))
def test_the_fast_path_has_no_per_step_loop(name, monkeypatch):
    no_reference(monkeypatch)
    layer = LAYERS[name](5, 7, num_layers=3, dropout=0.3, bidirectional=True, batch_first=True,
                         weight_drop=0.5, locked_dropout=True)  # fmt: skip
    x = torch.randn(4, 6, 5)
    for call in ({}, {"lengths": LENGTHS}):
        output, _ = layer(x, **call)
        output.sum().backward()
    assert layer.weight_hh_l2_reverse.grad.ne(0).any()


def test_the_same_layer_in_the_same_call_uses_one_matrix_at_every_step():
    """A linear RNN (relu, no bias, W_ih = I) on inputs that are zero after t = 0 gives
    ``h_t = (W_hh')^t h_1`` only if every step uses the same dropped ``W_hh'``."""
    layer = RNN(3, 3, nonlinearity="relu", bias=False, batch_first=True, weight_drop=0.5, backend="fast")
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.eye(3))
        layer.weight_hh_l0.copy_(torch.full((3, 3), 0.5))
    x = torch.zeros(1, 4, 3)
    x[0, 0] = torch.tensor([1.0, 2.0, 3.0])
    torch.manual_seed(2)
    output, _ = layer(x)
    torch.manual_seed(2)
    w = F.dropout(torch.full((3, 3), 0.5), 0.5)  # the same draw
    h = x[0, 0]
    for t in range(1, 4):
        h = torch.relu(w @ h)
        torch.testing.assert_close(output[0, t], h)


# -- locked dropout in the layers -----------------------------------------------------------------

LOCKED_CASES = [
    pytest.param(name, layers, bidirectional, ragged,
                 id=f"{name}-{layers}-{'bi' if bidirectional else 'uni'}-{'ragged' if ragged else 'full'}")
    for name in LAYERS
    for layers, bidirectional in [(2, False), (3, True)]
    for ragged in (False, True)
]  # fmt: skip


@pytest.mark.parametrize("name, layers, bidirectional, ragged", LOCKED_CASES)
def test_locked_dropout_fast_equals_reference_under_the_same_seed(name, layers, bidirectional, ragged):
    kwargs = {"num_layers": layers, "dropout": 0.4, "bidirectional": bidirectional, "locked_dropout": True}
    fast, reference = pair(name, weight_drop=0.3, **kwargs)
    x = torch.randn(4, 6, 5)
    call = {"lengths": LENGTHS} if ragged else {}
    fast_result, reference_result = run(fast, x, 9, **call), run(reference, x, 9, **call)
    assert_same(fast_result, reference_result)
    assert fast_result[1].shape[0] == layers * (2 if bidirectional else 1)  # final states: k*D + d rows
    if ragged:  # padded steps stay zero
        padded_steps = torch.arange(6) >= LENGTHS.unsqueeze(1)  # (N, L)
        assert bool(fast_result[0][padded_steps].eq(0).all())
    # Without locking, the same seed gives other numbers (one mask per element).
    unlocked = LAYERS[name](5, 7, batch_first=True, backend="reference", weight_drop=0.3,
                            **{**kwargs, "locked_dropout": False})  # fmt: skip
    unlocked.load_state_dict(fast.state_dict())
    assert not torch.allclose(run(unlocked, x, 9, **call)[0], reference_result[0])


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_locked_dropout_between_layers_is_one_mask_along_time(backend, monkeypatch):
    layer = LSTM(5, 7, num_layers=3, dropout=0.5, batch_first=True, locked_dropout=True, backend=backend)
    seen = []
    original = _Recurrent._between_layers

    def spy(self, output):
        dropped = original(self, output)
        seen.append((output, dropped))
        return dropped

    monkeypatch.setattr(_Recurrent, "_between_layers", spy)
    layer(torch.randn(4, 6, 5))
    assert len(seen) == 2
    for output, dropped in seen:
        kept = dropped != 0  # (N, L, F)
        assert bool((kept == kept[:, :1]).all())  # the same features dropped at every step
        assert 0 < kept.float().mean() < 1
        torch.testing.assert_close(dropped[kept], output[kept] * 2)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_locked_dropout_does_nothing_in_eval(backend):
    torch.manual_seed(0)
    locked = LSTM(5, 7, num_layers=2, dropout=0.5, locked_dropout=True, backend=backend).eval()
    plain = nn.LSTM(5, 7, num_layers=2, dropout=0.5).eval()
    plain.load_state_dict(locked.state_dict())
    x = torch.randn(6, 3, 5)
    torch.testing.assert_close(locked(x)[0], plain(x)[0])


def test_locked_dropout_with_dropout_one_zeroes_the_next_layers_input():
    layer = GRU(5, 7, num_layers=2, dropout=1.0, batch_first=True, locked_dropout=True, bias=False)
    output, _ = layer(torch.randn(2, 4, 5))
    assert bool(output.eq(0).all())  # no bias, zero input, zero state: zero


# -- the scripted, traced, exported and compiled layers -------------------------------------------


@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_jit_script_of_a_regularised_layer_matches_eager_in_eval(name):
    layer = LAYERS[name](5, 7, num_layers=2, dropout=0.2, bidirectional=True, weight_drop=0.5,
                         locked_dropout=True).eval()  # fmt: skip
    scripted = torch.jit.script(layer)
    x = torch.randn(6, 3, 5)
    assert_same(run(scripted, x, 0), run(layer, x, 0), atol=1e-6)


def test_torch_jit_script_in_training_mode_warns_about_the_regularisation():
    layer = LSTM(5, 7, weight_drop=0.5)
    with pytest.warns(UserWarning, match="applies neither weight_drop nor locked_dropout"):
        torch.jit.script(layer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        torch.jit.script(LSTM(5, 7))  # nothing to warn about


class OutputOf(nn.Module):
    """A layer's output on a ragged batch, as tracing and ONNX export take it (positional inputs)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        return self.layer(x, lengths=lengths)[0]


def test_torch_jit_trace_in_eval_ignores_weight_drop():
    layer = GRU(5, 7, batch_first=True, bidirectional=True, weight_drop=0.5).eval()
    x = torch.randn(4, 6, 5)
    traced = torch.jit.trace(OutputOf(layer).eval(), (x, LENGTHS))
    torch.testing.assert_close(traced(x, LENGTHS), layer(x, lengths=LENGTHS)[0])


def test_onnx_export_in_eval_equals_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    layer = LSTM(5, 7, num_layers=2, batch_first=True, dropout=0.3, weight_drop=0.5, locked_dropout=True)
    model = OutputOf(layer).eval()
    x = torch.randn(4, 6, 5)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # the TorchScript-based exporter, as rnnkit.export
        torch.onnx.export(model, (x, LENGTHS), str(tmp_path / "l.onnx"), dynamo=False,
                          input_names=["x", "lengths"], output_names=["output"])  # fmt: skip
    session = ort.InferenceSession(str(tmp_path / "l.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"x": x.numpy(), "lengths": LENGTHS.numpy()})
    assert np.abs(output - model(x, LENGTHS).detach().numpy()).max() <= 1e-5


def test_torch_compile_draws_new_masks_and_trains():
    torch._dynamo.reset()
    x = torch.randn(3, 6, 5)
    fast, reference = pair("LSTM", num_layers=2, dropout=0.3, weight_drop=0.5, locked_dropout=True)
    compiled = torch.compile(fast, backend="eager")
    assert_same(run(compiled, x, 11), run(reference, x, 11))
    first, second = compiled(x)[0], compiled(x)[0]
    assert not torch.allclose(first, second)
    first.sum().backward()
    assert fast.weight_hh_l1.grad.ne(0).any()
    torch.testing.assert_close(compiled.eval()(x)[0], reference.eval()(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(LAYERS))
def test_regularised_fast_path_equals_reference_on_cuda_without_warnings(name):
    """cuDNN gets dropped (unflattened) weight_hh matrices: same numbers, and no advice to flatten."""
    x, lengths = torch.randn(4, 6, 5, device="cuda"), LENGTHS.cuda()
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        for weight_drop in (0.0, 0.5):  # locked dropout alone runs one layer's slice of the weights
            fast, reference = pair(name, num_layers=2, dropout=0.3, bidirectional=True,
                                   weight_drop=weight_drop, locked_dropout=True)  # fmt: skip
            fast.cuda(), reference.cuda()
            for call in ({}, {"lengths": lengths}):
                with warnings.catch_warnings():
                    warnings.simplefilter("error", UserWarning)
                    fast_result = run(fast, x, 12, **call)
                assert_same(fast_result, run(reference, x, 12, **call), atol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


# -- LockedDropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
def test_locked_dropout_module_keeps_one_mask_along_time(batch_first):
    drop = LockedDropout(0.3, batch_first=batch_first)
    x = torch.rand(8, 10, 16) + 0.5  # never zero
    y = drop(x)
    ratio = y / x  # (N, L, F) or (L, N, F)
    time = 1 if batch_first else 0
    first = ratio.narrow(time, 0, 1)
    torch.testing.assert_close(ratio, first.expand_as(ratio))  # constant over time
    kept = ratio != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(ratio[kept], torch.full_like(ratio[kept], 1 / 0.7))


def test_locked_dropout_module_is_the_identity_in_eval_and_at_zero():
    x = torch.randn(2, 3, 4)
    assert torch.equal(LockedDropout(0.5).eval()(x), x)
    assert torch.equal(LockedDropout(0.0)(x), x)
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)


def test_locked_dropout_module_draws_a_new_mask_per_call_and_keeps_the_expectation():
    drop = LockedDropout(0.5)
    x = torch.ones(64, 5, 64)
    assert not torch.equal(drop(x), drop(x))
    assert abs(float(drop(x).mean()) - 1) < 0.1
    y = drop(x.requires_grad_())
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the gradient passes through the same mask


@pytest.mark.parametrize("p", [-0.1, 1.0, 2, True])
def test_locked_dropout_module_checks_p(p):
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\)"):
        LockedDropout(p)


def test_locked_dropout_module_wants_three_dimensions():
    with pytest.raises(ValueError, match=r"3-D input \[L, N, F\], got 2-D"):
        LockedDropout(0.5, batch_first=False)(torch.randn(3, 4))
    assert "p=0.5, batch_first=False" in repr(LockedDropout(0.5, batch_first=False))


# -- embedding dropout ----------------------------------------------------------------------------


def test_embedding_dropout_drops_a_word_at_every_position():
    torch.manual_seed(0)
    table = nn.Embedding(20, 8)
    ids = torch.randint(0, 20, (6, 12))
    vectors = embedding_dropout(table, ids, p=0.5)
    dropped = vectors.eq(0).all(-1)  # (N, L)
    words = ids.unique()
    for word in words:
        at = dropped[ids == word]
        assert bool(at.all()) or not bool(at.any())
    some_dropped = {int(w) for w in words if dropped[ids == w].all()}
    assert 0 < len(some_dropped) < len(words)
    kept = ~dropped
    torch.testing.assert_close(vectors[kept], table(ids)[kept] * 2)


def test_embedding_dropout_keeps_the_expectation():
    torch.manual_seed(0)
    table = nn.Embedding(5, 4)
    ids = torch.tensor([[0, 1, 2, 3, 4]])
    mean = torch.stack([embedding_dropout(table, ids, p=0.3) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, table(ids), atol=0.1, rtol=0.1)


def test_embedding_dropout_is_the_lookup_in_eval_and_at_zero():
    table = nn.Embedding(10, 4)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(embedding_dropout(table, ids, p=0.5, training=False), table(ids))
    assert torch.equal(embedding_dropout(table, ids, p=0.0), table(ids))
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\), got 1"):
        embedding_dropout(table, ids, p=1)


def test_embedding_dropout_keeps_sparse_gradients():
    table = nn.Embedding(1000, 16, sparse=True)
    ids = torch.tensor([[3, 7, 3], [9, 9, 1]])
    embedding_dropout(table, ids, p=0.5).sum().backward()
    grad = table.weight.grad
    assert grad.is_sparse
    rows = set(grad.coalesce().indices()[0].tolist())
    assert rows == {1, 3, 7, 9}  # only the words looked up, not a V x E matrix
    torch.optim.SparseAdam(table.parameters()).step()


def test_embedding_dropout_gradient_is_zero_for_dropped_words():
    torch.manual_seed(1)
    table = nn.Embedding(50, 4)
    ids = torch.arange(50).view(5, 10)
    vectors = embedding_dropout(table, ids, p=0.5)
    vectors.sum().backward()
    dropped = vectors.eq(0).all(-1).flatten()  # ids are 0..49 in order
    assert bool(table.weight.grad[dropped].eq(0).all())
    torch.testing.assert_close(table.weight.grad[~dropped], torch.full_like(table.weight.grad[~dropped], 2.0))


# -- AR and TAR -----------------------------------------------------------------------------------

H = torch.tensor(
    [
        [[1.0, -1.0], [2.0, 0.0], [4.0, 2.0]],
        [[0.0, 3.0], [1.0, 1.0], [9.0, 9.0]],
    ]
)  # (N=2, L=3, F=2)
MASK = torch.tensor([[True, True, True], [True, True, False]])


def test_ar_loss_by_hand():
    # squares: 1 1 4 0 16 4 | 0 9 1 1 81 81 -> 199 over 12; masked: 26 + 11 = 37 over 10
    torch.testing.assert_close(ar_loss(H, 0.5), torch.tensor(0.5 * 199 / 12))
    torch.testing.assert_close(ar_loss(H, 2.0, MASK), torch.tensor(2.0 * 37 / 10))
    assert ar_loss(H, 0.5).dim() == 0


def test_tar_loss_by_hand():
    # changes: (1,1) (2,2) | (1,-2) (8,8) -> squares 1 1 4 4 | 1 4 64 64 -> 143 over 8
    # masked: the second sequence's (t=1, t=2) pair is not real: 10 + 5 = 15 over 6
    torch.testing.assert_close(tar_loss(H, 1.0), torch.tensor(143 / 8))
    torch.testing.assert_close(tar_loss(H, 3.0, MASK), torch.tensor(3.0 * 15 / 6))
    assert tar_loss(H, 1.0, MASK).dim() == 0


def test_ar_and_tar_at_zero_compute_nothing():
    h = torch.full((2, 3, 2), float("nan"))  # would poison any computation
    for loss in (ar_loss(h, 0.0), tar_loss(h, 0.0), ar_loss(h, 0, MASK), tar_loss(h, 0, MASK)):
        assert loss.dim() == 0 and float(loss) == 0.0


def test_tar_without_a_pair_of_real_steps_is_zero():
    one_step = torch.tensor([[True, False, False], [True, False, False]])
    assert float(tar_loss(H, 1.0, one_step)) == 0.0
    assert float(tar_loss(H[:, :1], 1.0)) == 0.0


def test_ar_and_tar_have_gradients_and_ignore_padding():
    h = H.clone().requires_grad_()
    (ar_loss(h, 1.0, MASK) + tar_loss(h, 1.0, MASK)).backward()
    assert bool(h.grad[1, 2].eq(0).all())  # the padded step takes no part
    assert bool(h.grad[0].ne(0).any())


def test_ar_and_tar_check_the_mask():
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \[N, L\] = \[2, 3\]"):
        ar_loss(H, 1.0, MASK.float())
    with pytest.raises(ValueError, match=r"tar_loss: mask must be a bool tensor"):
        tar_loss(H, 1.0, MASK[:, :2])
