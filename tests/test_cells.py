"""The cells: PyTorch's numbers, names and initialisation; the equations hold; golden values."""

import math

import pytest
import torch

from rnnkit.nn import GRUCell, LSTMCell, RNNCell

E, H, N = 3, 5, 4

CASES = [
    (lambda: RNNCell(E, H), lambda: torch.nn.RNNCell(E, H)),
    (lambda: RNNCell(E, H, nonlinearity="relu"), lambda: torch.nn.RNNCell(E, H, nonlinearity="relu")),
    (lambda: LSTMCell(E, H), lambda: torch.nn.LSTMCell(E, H)),
    (lambda: GRUCell(E, H), lambda: torch.nn.GRUCell(E, H)),
]


def _state(cell, generator):
    h = torch.randn(N, H, generator=generator, requires_grad=True)
    if isinstance(cell, LSTMCell):
        return (h, torch.randn(N, H, generator=generator, requires_grad=True))
    return h


@pytest.mark.parametrize("make, make_torch", CASES, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_cell_equals_torch_forward_and_gradients(make, make_torch):
    torch.manual_seed(0)
    ours, theirs = make(), make_torch()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict(theirs.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, E, generator=g, requires_grad=True)
    state = _state(ours, g)
    inputs = [x, *(state if isinstance(state, tuple) else (state,))]

    results = []
    for cell in (ours, theirs):
        out = cell(x, state)
        out = out if isinstance(out, tuple) else (out,)
        loss = sum((o * torch.arange(o.numel()).view_as(o).sin()).sum() for o in out)
        grads = torch.autograd.grad(loss, inputs + list(cell.parameters()))
        results.append((out, grads))
    (out_a, grads_a), (out_b, grads_b) = results
    for a, b in zip(out_a, out_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls, rows", [(RNNCell, H), (LSTMCell, 4 * H), (GRUCell, 3 * H)])
def test_parameter_shapes_and_uniform_initialisation(cls, rows):
    cell = cls(E, H)
    shapes = {name: tuple(p.shape) for name, p in cell.named_parameters()}
    assert shapes == {"weight_ih": (rows, E), "weight_hh": (rows, H), "bias_ih": (rows,), "bias_hh": (rows,)}
    bound = 1 / math.sqrt(H)
    values = torch.cat([p.detach().flatten() for p in cell.parameters()])
    assert values.abs().max() <= bound
    assert values.std() > bound / 4  # drawn, not constant


def test_forget_bias_shifts_only_the_forget_gate_bias():
    torch.manual_seed(3)
    plain = LSTMCell(E, H)
    torch.manual_seed(3)
    biased = LSTMCell(E, H, forget_bias=1.0)
    delta = biased.bias_ih.detach() - plain.bias_ih.detach()
    torch.testing.assert_close(delta[H : 2 * H], torch.ones(H))
    assert delta[:H].abs().max() == 0 and delta[2 * H :].abs().max() == 0
    assert torch.equal(biased.bias_hh, plain.bias_hh) and torch.equal(biased.weight_ih, plain.weight_ih)
    assert "forget_bias=1.0" in repr(biased)


def _constant(cell, value):
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(value)
            if p.dim() == 1:
                p.zero_()  # biases zero, weights `value`
    return cell


def test_lstm_golden_values_from_constant_weights():
    cell = _constant(LSTMCell(2, 1), 0.5)
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    cell.double()
    h, c = cell(x, (torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)))
    assert c.item() == pytest.approx(-0.17446802061504182, abs=1e-12)
    assert h.item() == pytest.approx(-0.06520848296674794, abs=1e-12)
    h, c = cell(x, (h, c))
    assert c.item() == pytest.approx(-0.24482002991772853, abs=1e-12)
    assert h.item() == pytest.approx(-0.08879433354745768, abs=1e-12)


def test_gru_and_rnn_golden_values_from_constant_weights():
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    h0 = torch.full((1, 1), 0.5, dtype=torch.float64)
    gru = _constant(GRUCell(2, 1), 0.5).double()
    assert gru(x, h0).item() == pytest.approx(0.009878100385126959, abs=1e-12)
    tanh = _constant(RNNCell(2, 1), 0.5).double()
    relu = _constant(RNNCell(2, 1, nonlinearity="relu"), 0.5).double()
    assert tanh(x, h0).item() == pytest.approx(-0.24491866240370913, abs=1e-12)
    assert relu(x, h0).item() == 0.0


def test_step_gates_satisfy_the_equations():
    torch.manual_seed(0)
    x, h, c = torch.randn(N, E), torch.randn(N, H), torch.randn(N, H)
    (h1, c1), g = LSTMCell(E, H).step_gates(x, (h, c))
    torch.testing.assert_close(c1, g["f"] * c + g["i"] * g["g"])
    torch.testing.assert_close(h1, g["o"] * torch.tanh(c1))
    assert all(((g[k] > 0) & (g[k] < 1)).all() for k in "ifo")

    h1, g = GRUCell(E, H).step_gates(x, h)
    torch.testing.assert_close(h1, (1 - g["z"]) * g["n"] + g["z"] * h)

    h1, g = RNNCell(E, H).step_gates(x, h)
    assert g == {}
    assert h1.shape == (N, H)


def test_static_step_uses_the_weights_it_is_given():
    cell = LSTMCell(E, H)
    zero = [torch.zeros_like(w) for w in cell.weights()]
    (h, c), gates = LSTMCell.step(torch.randn(N, E), (torch.zeros(N, H), torch.ones(N, H)), *zero)
    torch.testing.assert_close(gates["f"], torch.full((N, H), 0.5))  # σ(0)
    torch.testing.assert_close(c, torch.full((N, H), 0.5))  # 0.5 · 1 + 0.5 · tanh(0)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: RNNCell(E, H, nonlinearity="sigmoid"),
            ValueError,
            "nonlinearity must be 'tanh' or 'relu', got 'sigmoid'",
        ),
        (lambda: LSTMCell(-1, H), ValueError, "input_size must be zero or more, got -1"),
        (lambda: GRUCell(E, 2.5), TypeError, r"hidden_size should be of type int, got: float \(2.5\)"),
    ],
)
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()
