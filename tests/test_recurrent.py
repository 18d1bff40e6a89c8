"""The layers: equal to torch.nn.RNN/LSTM/GRU fed a packed sequence on every path; recording; bad input."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM, RNN, Trace, fused

E, H, N, L = 3, 5, 4, 6
RAGGED = [6, 1, 4, 2]  # includes a sequence of length 1 and one of full length

CELLS = {
    "rnn-tanh": (RNN, torch.nn.RNN, {}),
    "rnn-relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}


def make_pair(cell, num_layers=1, bidirectional=False, backend="fast", dtype=torch.float32, seed=0, **extra):
    """Our layer and torch's, with the same weights (copied from torch's)."""
    ours_cls, torch_cls, kwargs = CELLS[cell]
    torch.manual_seed(seed)
    theirs = torch_cls(E, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kwargs)
    ours = ours_cls(
        E, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, backend=backend,
        **kwargs, **extra,
    )  # fmt: skip
    ours.load_state_dict(theirs.state_dict())
    return ours.to(dtype), theirs.to(dtype)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def run_torch(module, x, lengths, state=None):
    """torch.nn's layer on a packed sequence (or the plain batch when lengths is None)."""
    if lengths is None:
        output, final = module(x, state)
        return output, as_tuple(final)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    output, final = module(packed, state)
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
    return output, as_tuple(final)


def loss_of(output, final):
    """A loss that weighs every output and final-state entry differently."""
    total = 0
    for t in (output, *final):
        total = total + (t * torch.arange(t.numel(), dtype=t.dtype, device=t.device).view_as(t).sin()).sum()
    return total


def compare(ours, theirs, x, lengths, state=None, fwd_tol=1e-5, grad_tol=1e-4):
    """Assert outputs, final states and the gradients of every parameter and of x all agree."""
    results = []
    for module, run in (
        (ours, lambda: ours(x, state, lengths=lengths)),
        (theirs, lambda: run_torch(theirs, x, lengths, state)),
    ):
        output, final = run()
        final = as_tuple(final)
        inputs = [x, *module.parameters(), *(as_tuple(state) if state is not None else ())]
        grads = torch.autograd.grad(loss_of(output, final), inputs)
        results.append((output, final, grads))
    (out_a, fin_a, grads_a), (out_b, fin_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=fwd_tol, rtol=0)
    for a, b in zip(fin_a, fin_b, strict=True):
        torch.testing.assert_close(a, b, atol=fwd_tol, rtol=0)
    names = ["x", *(n for n, _ in ours.named_parameters()), "h_0", "c_0"]
    for name, a, b in zip(names, grads_a, grads_b, strict=False):
        torch.testing.assert_close(
            a, b, atol=grad_tol, rtol=grad_tol, msg=lambda m, name=name: f"grad {name}: {m}"
        )


def inputs(dtype=torch.float32, n=N, steps=L, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, steps, E, generator=g, dtype=dtype, requires_grad=True)


MATRIX = [
    pytest.param(
        cell,
        layers,
        bi,
        lengths,
        backend,
        id=f"{cell}-{layers}layer-{'bi' if bi else 'uni'}-{lengths}-{backend}",
    )
    for cell in CELLS
    for layers in (1, 2)
    for bi in (False, True)
    for lengths in ("equal", "ragged")
    for backend in ("fast", "reference", "packed", "grouped")
    if not (backend in ("packed", "grouped") and lengths == "equal")  # these apply to ragged batches only
]


@pytest.mark.parametrize("cell, num_layers, bidirectional, lengths, backend", MATRIX)
def test_equals_torch_fed_a_packed_sequence(cell, num_layers, bidirectional, lengths, backend):
    ours, theirs = make_pair(
        cell, num_layers, bidirectional, "reference" if backend == "reference" else "fast"
    )
    if backend == "packed":
        ours._use_packing = lambda x, lengths: True  # the GPU's choice, checked here on CPU
    if backend == "grouped":
        ours._length_groups = lambda lengths: 3  # big batches' choice on CPU: groups of similar lengths
    compare(ours, theirs, inputs(), None if lengths == "equal" else torch.tensor(RAGGED))


@pytest.mark.parametrize("backend", ["fast", "reference", "packed"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_equals_torch_with_an_initial_state(cell, backend):
    ours, theirs = make_pair(cell, 2, True, "reference" if backend == "reference" else "fast")
    ours._use_packing = lambda x, lengths: backend == "packed"
    g = torch.Generator().manual_seed(2)
    h0 = torch.randn(4, N, H, generator=g, requires_grad=True)
    state = (h0, torch.randn(4, N, H, generator=g, requires_grad=True)) if cell == "lstm" else h0
    compare(ours, theirs, inputs(), torch.tensor(RAGGED), state)


@pytest.mark.parametrize("cell", ["gru", "rnn-tanh"])
def test_inference_packs_gru_and_rnn_on_cpu_when_the_padding_pays(cell, monkeypatch):
    ours, theirs = make_pair(cell, 2, False)  # one direction: packing depends on the padding
    calls = []
    packed = fused.packed
    monkeypatch.setattr(fused, "packed", lambda *args, **kw: calls.append(1) or packed(*args, **kw))
    monkeypatch.setattr(fused, "PACKING_PAYS", 1)  # this tiny batch's padding pays for packing
    x, lengths = inputs().detach(), torch.tensor(RAGGED)
    with torch.no_grad():
        output, h_n = ours(x, lengths=lengths)
        expected, (expected_h_n,) = run_torch(theirs, x, lengths)
    assert calls == [1]
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, expected_h_n)
    ours(x, lengths=lengths)  # with gradients: the padded path
    assert calls == [1]
    monkeypatch.setattr(fused, "PACKING_PAYS", 10**9)  # too little padding to pay: padded
    with torch.no_grad():
        output, h_n = ours(x, lengths=lengths)
    assert calls == [1]
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, expected_h_n)


def test_lstms_and_training_run_padded():
    x, lengths = torch.zeros(64, 80, E), torch.full((64,), 10)  # 4,480 padded steps
    assert not LSTM(E, H)._use_packing(x, lengths)
    assert not GRU(E, H)._use_packing(x, lengths)  # gradients are on here
    with torch.no_grad():
        assert GRU(E, 64)._use_packing(x, lengths) and not LSTM(E, 64)._use_packing(x, lengths)
        assert not GRU(E, 64)._use_packing(x, torch.full((64,), 80))  # no padding to skip
        little = torch.full((64,), 79)  # too little padding to pay, one way; both ways, packing pays
        assert not GRU(E, 64)._use_packing(x, little)
        assert GRU(E, 64, bidirectional=True)._use_packing(x, little)


def test_big_ragged_batches_run_in_length_groups():
    lstm = LSTM(E, 128)
    assert lstm._length_groups(torch.tensor([80] * 32 + [10] * 32)) == 2
    assert lstm._length_groups(torch.tensor([80, 10, 80, 10])) == 1  # too small to split
    # 16 lengths spread over 5..80: worth splitting for a big LSTM, not for a small GRU (costly steps)
    spread = torch.arange(5, 81, 5)
    assert LSTM(E, 256)._length_groups(torch.cat([spread] * 8)) > 1
    assert GRU(E, 32)._length_groups(spread) == 1


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_padding_after_the_longest_sequence_is_zero(backend):
    ours, theirs = make_pair("lstm", 2, True, backend)
    lengths = torch.tensor([4, 1, 3, 2])  # L = 6 > max length
    compare(ours, theirs, inputs(), lengths)
    output, _ = ours(inputs(), lengths=lengths)
    assert output[:, 4:].abs().max() == 0 and output[1, 1:].abs().max() == 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_full_lengths_equal_no_lengths(cell):
    ours, _ = make_pair(cell, 2, True)
    x = inputs()
    a, fa = ours(x)
    b, fb = ours(x, lengths=torch.full((N,), L))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(fa, fb)


def test_padding_values_do_not_matter():
    ours, _ = make_pair("lstm", 2, True)
    x, lengths = inputs(), torch.tensor(RAGGED)
    garbage = x.detach().clone()
    garbage[1, 1:] = 100.0
    for backend in ("fast", "reference"):
        ours.backend = backend
        a, fa = ours(x, lengths=lengths)
        b, fb = ours(garbage, lengths=lengths)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(fa, fb)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", list(CELLS))
def test_padded_path_ignores_padding_values_and_returns_batch_first(cell, bidirectional):
    # Regression: the padded path runs time-major and skips input masking where no state is frozen.
    # Padding holding NaN must not leak either (multiplying by a 0/1 mask would keep NaN).
    ours, _ = make_pair(cell, 2, bidirectional)
    x, lengths = inputs(), torch.tensor(RAGGED)
    a, fa = ours(x, lengths=lengths)
    assert a.shape == (N, L, H * (2 if bidirectional else 1))  # a time-major view, like torch.nn's
    for fill in (100.0, 1e30, float("inf"), float("nan")):
        garbage = x.detach().clone()
        for i, n in enumerate(RAGGED):
            garbage[i, n:] = fill
        for backend in ("fast", "reference"):
            ours.backend = backend
            b, fb = ours(garbage, lengths=lengths)
            torch.testing.assert_close(a, b, msg=f"{fill} {backend}")
            torch.testing.assert_close(as_tuple(fa), as_tuple(fb), msg=f"{fill} {backend}")


def test_batch_first_false_is_the_transpose():
    ours, _ = make_pair("gru", 2, True)
    time_major = GRU(E, H, num_layers=2, bidirectional=True, batch_first=False)
    time_major.load_state_dict(ours.state_dict())
    x, lengths = inputs(), torch.tensor(RAGGED)
    a, ha = ours(x, lengths=lengths)
    b, hb = time_major(x.transpose(0, 1), lengths=lengths)
    torch.testing.assert_close(a, b.transpose(0, 1))
    torch.testing.assert_close(ha, hb)


@pytest.mark.parametrize("cell", list(CELLS))
def test_state_dict_moves_both_ways_with_torch(cell):
    ours, theirs = make_pair(cell, 2, True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "weight_hh_l1_reverse" in ours.state_dict()
    torch.manual_seed(7)
    fresh = CELLS[cell][1](E, H, num_layers=2, bidirectional=True, batch_first=True, **CELLS[cell][2])
    fresh.load_state_dict(ours.state_dict())  # ours -> torch, strict
    for name, p in fresh.named_parameters():
        assert torch.equal(p, getattr(theirs, name))


def test_parameters_are_used_in_place_by_the_fast_path():
    ours, _ = make_pair("lstm", 1, True)
    x = inputs()
    before, _ = ours(x, lengths=torch.tensor(RAGGED))
    with torch.no_grad():
        ours.weight_hh_l0_reverse.mul_(2)
    after, _ = ours(x, lengths=torch.tensor(RAGGED))
    assert torch.equal(before[..., :H], after[..., :H])
    assert not torch.allclose(before[..., H:], after[..., H:])


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_dropout_only_in_training(backend):
    ours, theirs = make_pair("lstm", 2, False, backend, dropout=0.5)
    x, lengths = inputs(), torch.tensor(RAGGED)
    ours.eval()
    compare(ours, theirs, x, lengths)  # eval: no dropout, so it equals torch without dropout
    ours.train()
    torch.manual_seed(0)
    a, _ = ours(x, lengths=lengths)
    b, _ = ours(x, lengths=lengths)
    assert not torch.allclose(a, b)
    assert a[1, 1:].abs().max() == 0  # padded steps stay zero


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        LSTM(E, H, dropout=0.2)


def test_forget_bias_initialises_every_layer():
    torch.manual_seed(0)
    plain = LSTM(E, H, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    biased = LSTM(E, H, num_layers=2, bidirectional=True, forget_bias=1.0)
    for name, p in biased.named_parameters():
        delta = p.detach() - getattr(plain, name).detach()
        expected = torch.zeros_like(delta)
        if name.startswith("bias_ih"):
            expected[H : 2 * H] = 1.0
        torch.testing.assert_close(delta, expected)


class WithLengths(torch.nn.Module):
    """``layer(x, lengths=lengths)`` as a module of two positional inputs, for ``torch.jit.trace``."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        return self.layer(x, lengths=lengths)


def test_jit_trace_of_a_bidirectional_lstm_with_lengths_is_dynamic():
    ours, _ = make_pair("lstm", 2, True)
    ours.eval()
    example = (torch.randn(3, 5, E), torch.tensor([5, 2, 3]))
    traced = torch.jit.trace(WithLengths(ours), example)
    x, lengths = torch.randn(6, 9, E), torch.tensor([9, 1, 4, 7, 2, 9])
    with torch.no_grad():
        expected, (h, c) = ours(x, lengths=lengths)
        got, (h2, c2) = traced(x, lengths)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


# -- recording -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
def test_recorded_last_steps_equal_the_final_state(cell):
    ours, _ = make_pair(cell, 2, True, dtype=torch.float64)
    x, lengths = inputs(torch.float64), torch.tensor(RAGGED)
    output, final, trace = ours(x, lengths=lengths, record=True)
    final = as_tuple(final)
    assert isinstance(trace, Trace) and trace.num_layers == 2 and trace.num_directions == 2
    rows = torch.arange(N)
    for k in range(2):
        forward_h = trace.get(k, 0, "h")[rows, lengths - 1]  # each sequence's last real token
        reverse_h = trace.get(k, 1, "h")[:, 0]  # the reverse direction ends at token 0
        torch.testing.assert_close(forward_h, final[0][2 * k])
        torch.testing.assert_close(reverse_h, final[0][2 * k + 1])
    last = torch.cat([trace.get(1, 0, "h"), trace.get(1, 1, "h")], dim=-1)
    torch.testing.assert_close(last, output)
    # the recording path gives the fast path's numbers
    fast_output, fast_final = ours(x, lengths=lengths)
    torch.testing.assert_close(fast_output, output)
    for a, b in zip(as_tuple(fast_final), final, strict=True):
        torch.testing.assert_close(a, b)


def test_recorded_lstm_gates_recompute_the_cell_state():
    ours, _ = make_pair("lstm", 2, True, dtype=torch.float64)
    lengths = torch.tensor(RAGGED)
    _, (_, c_n), trace = ours(inputs(torch.float64), lengths=lengths, record=True)
    assert trace.names == ("h", "c", "i", "f", "g", "o")
    real = (torch.arange(L) < lengths.unsqueeze(1)).unsqueeze(-1)  # (N, L, 1)
    for k in range(2):
        for d in range(2):
            i, f, g, o, c, h = (trace.get(k, d, name) for name in "ifgoch")
            zero = torch.zeros_like(c[:, :1])
            # c_{t-1}: the previous token's, or for the reverse direction the next token's
            previous = torch.cat([zero, c[:, :-1]], dim=1) if d == 0 else torch.cat([c[:, 1:], zero], dim=1)
            torch.testing.assert_close(c, (f * previous + i * g) * real)
            torch.testing.assert_close(h, o * torch.tanh(c))
            assert all(trace.get(k, d, name)[~real.squeeze(-1)].abs().max() == 0 for name in trace.names)
    torch.testing.assert_close(trace.get(0, 1, "c")[:, 0], c_n[1])


def test_recorded_gru_gates_recompute_the_state():
    ours, _ = make_pair("gru", 1, False, dtype=torch.float64)
    _, h_n, trace = ours(inputs(torch.float64), record=True)
    r, z, n, h = (trace.get(0, 0, name) for name in "rznh")
    previous = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
    torch.testing.assert_close(h, (1 - z) * n + z * previous)
    torch.testing.assert_close(h[:, -1], h_n[0])


@pytest.mark.parametrize("bias", [True, False])
def test_recording_with_a_projection_and_without_bias_gives_the_fast_path_numbers(bias):
    theirs = torch.nn.LSTM(E, H, num_layers=2, bidirectional=True, proj_size=2, bias=bias, batch_first=True)
    ours = LSTM(E, H, num_layers=2, bidirectional=True, proj_size=2, bias=bias, batch_first=True).double()
    ours.load_state_dict(theirs.state_dict())
    x, lengths = inputs(torch.float64), torch.tensor(RAGGED)
    output, (h_n, c_n), trace = ours(x, lengths=lengths, record=True)
    assert trace.get(1, 1, "h").shape == (N, L, 2) and trace.get(1, 1, "c").shape == (N, L, H)
    assert h_n.shape == (4, N, 2) and c_n.shape == (4, N, H)
    expected, (expected_h, expected_c) = run_torch(theirs.double(), x, lengths)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close((h_n, c_n), (expected_h, expected_c))
    torch.testing.assert_close(torch.cat([trace.get(1, 0, "h"), trace.get(1, 1, "h")], dim=-1), output)


def test_recording_keeps_gradients_and_works_with_backend_fast():
    ours, _ = make_pair("lstm", 1, False, backend="fast")
    x = inputs()
    _, _, trace = ours(x, record=True)
    trace.get(0, 0, "f").sum().backward()
    assert x.grad is not None and ours.weight_ih_l0.grad.abs().sum() > 0


def test_trace_get_names_the_allowed_values():
    _, _, trace = RNN(E, H, batch_first=True)(inputs(), record=True)
    assert trace.names == ("h",)
    with pytest.raises(ValueError, match="layer must be in 0..0, got 1"):
        trace.get(1, 0, "h")
    with pytest.raises(ValueError, match="direction must be in 0..0, got 1"):
        trace.get(0, 1, "h")
    with pytest.raises(ValueError, match="name must be one of h, got 'c'"):
        trace.get(0, 0, "c")


# -- bad input -------------------------------------------------------------------------------------

BAD_CALLS = [
    (
        "rank",
        lambda m: m(torch.randn(N, L, E, 1)),
        ValueError,
        r"LSTM: Expected input to be 2D or 3D, got 4D tensor instead",
    ),
    (
        "features",
        lambda m: m(torch.randn(N, L, 7)),
        RuntimeError,
        r"input.size\(-1\) must be equal to input_size. Expected 3, got 7",
    ),
    (
        "empty",
        lambda m: m(torch.randn(N, 0, E)),
        RuntimeError,
        "Expected sequence length to be larger than 0",
    ),
    (
        "dtype",
        lambda m: m(torch.randn(N, L, E, dtype=torch.float64)),
        ValueError,
        r"RNN input dtype \(torch.float64\) does not match weight dtype \(torch.float32\)",
    ),
    (
        "lengths-type",
        lambda m: m(torch.randn(N, L, E), lengths=[6, 1, 4, 2]),
        TypeError,
        "lengths must be an int64 tensor \\[N\\], got list",
    ),
    (
        "lengths-dtype",
        lambda m: m(torch.randn(N, L, E), lengths=torch.tensor([6.0, 1, 4, 2])),
        ValueError,
        "lengths must be an integer tensor \\(int64\\), got dtype torch.float32",
    ),
    (
        "lengths-shape",
        lambda m: m(torch.randn(N, L, E), lengths=torch.tensor([6, 1, 4])),
        ValueError,
        r"lengths must have shape \[N\]=\[4\], got \[3\]",
    ),
    (
        "lengths-2d",
        lambda m: m(torch.randn(N, L, E), lengths=torch.ones(N, 1, dtype=torch.long)),
        ValueError,
        r"lengths must have shape \[N\]=\[4\], got \[4, 1\]",
    ),
    (
        "lengths-zero",
        lambda m: m(torch.randn(N, L, E), lengths=torch.tensor([6, 1, 0, 2])),
        ValueError,
        "lengths must be in 1..L=6, got 0 at batch index 2",
    ),
    (
        "lengths-long",
        lambda m: m(torch.randn(N, L, E), lengths=torch.tensor([6, 7, 4, 2])),
        ValueError,
        "lengths must be in 1..L=6, got 7 at batch index 1",
    ),
    (
        "lengths-unbatched",
        lambda m: m(torch.randn(L, E), lengths=torch.tensor([6])),
        ValueError,
        "lengths= is for a batch of sequences",
    ),
    (
        "state-type",
        lambda m: m(torch.randn(N, L, E), torch.zeros(2, N, H)),
        TypeError,
        "LSTM hx must be a tuple \\(h_0, c_0\\), got Tensor",
    ),
    (
        "state-shape",
        lambda m: m(torch.randn(N, L, E), (torch.zeros(2, N, H), torch.zeros(1, N, H))),
        RuntimeError,
        r"Expected hidden\[1\] size \(2, 4, 5\), got \[1, 4, 5\]",
    ),
    (
        "state-rank",
        lambda m: m(torch.randn(N, L, E), (torch.zeros(2, N, H), torch.zeros(N, H))),
        RuntimeError,
        r"For batched 3-D input, hx and cx should also be 3-D but got \(3-D, 2-D\) tensors",
    ),
]


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("call, error, message", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_a_clear_error(call, error, message, backend):
    with pytest.raises(error, match=message):
        call(LSTM(E, H, bidirectional=True, batch_first=True, backend=backend))


def test_gru_state_shape_is_checked():
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 4, 5\), got \[2, 4, 6\]"):
        GRU(E, H, num_layers=2, batch_first=True)(torch.randn(N, L, E), torch.zeros(2, N, 6))


def test_a_tuple_state_is_only_for_lstm():
    with pytest.raises(TypeError, match=r"hx must be a tensor h_0 \(only an LSTM takes a tuple\), got tuple"):
        GRU(E, H)(torch.randn(L, N, E), (torch.zeros(1, N, H), torch.zeros(1, N, H)))


def test_rank_message_names_the_layer():
    with pytest.raises(ValueError, match=r"RNN: Expected input to be 2D or 3D, got 1D tensor instead"):
        RNN(E, H)(torch.randn(L))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: LSTM(E, H, backend="cuda"),
            ValueError,
            "backend must be one of 'auto', 'fast', 'reference', got 'cuda'",
        ),
        (lambda: GRU(E, H, num_layers=0), ValueError, "num_layers must be greater than zero, got 0"),
        (
            lambda: LSTM(E, H, num_layers=2, dropout=1.5),
            ValueError,
            r"dropout should be a number in range \[0, 1\]",
        ),
        (
            lambda: RNN(E, H, nonlinearity="gelu"),
            ValueError,
            "Unknown nonlinearity 'gelu'. Select from 'tanh' or 'relu'",
        ),
        (lambda: LSTM(E, -1), ValueError, "hidden_size must be greater than zero, got -1"),
        (lambda: LSTM(E, H, batch_first="False"), TypeError, "batch_first should be of type bool, got: str"),
        (
            lambda: LSTM(E, H, proj_size=H),
            ValueError,
            "proj_size has to be smaller than hidden_size, got 5 >= 5",
        ),
        (lambda: GRU(E, H, proj_size=2), ValueError, "proj_size argument is only supported for LSTM"),
    ],
)
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()
