"""Property-based: for random sizes, layers, directions, biases, projections and lengths, every path
equals torch.nn."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM, RNN

LAYERS = {
    "rnn-tanh": (RNN, torch.nn.RNN, {}),
    "rnn-relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}


@st.composite
def cases(draw):
    n = draw(st.integers(1, 5))
    steps = draw(st.integers(1, 7))
    return {
        "cell": draw(st.sampled_from(sorted(LAYERS))),
        "input_size": draw(st.integers(1, 6)),
        "hidden_size": draw(st.integers(1, 6)),
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "lengths": draw(st.lists(st.integers(1, steps), min_size=n, max_size=n)),
        "steps": steps,
        "with_state": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "proj_fraction": draw(st.sampled_from([0.0, 0.0, 0.5])),  # an LSTM's proj_size, as a share of H
        "seed": draw(st.integers(0, 2**16)),
    }


def _tuple(state):
    return state if isinstance(state, tuple) else (state,)


@settings(max_examples=25, deadline=None)
@given(cases())
def test_every_path_equals_torch(case):
    ours_cls, torch_cls, kwargs = LAYERS[case["cell"]]
    torch.manual_seed(case["seed"])
    config = dict(
        num_layers=case["num_layers"], bidirectional=case["bidirectional"], bias=case["bias"], **kwargs
    )
    proj_size = int(case["proj_fraction"] * case["hidden_size"]) if case["cell"] == "lstm" else 0
    if proj_size:
        config["proj_size"] = proj_size
    theirs = torch_cls(case["input_size"], case["hidden_size"], batch_first=True, **config).double()
    n, steps, h = len(case["lengths"]), case["steps"], case["hidden_size"]
    x = torch.randn(n, steps, case["input_size"], dtype=torch.float64)
    lengths = torch.tensor(case["lengths"])
    state = None
    if case["with_state"]:
        rows = case["num_layers"] * (2 if case["bidirectional"] else 1)
        h0 = torch.randn(rows, n, proj_size or h, dtype=torch.float64)
        state = (h0, torch.randn(rows, n, h, dtype=torch.float64)) if case["cell"] == "lstm" else h0

    x.requires_grad_(True)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, expected_final = theirs(packed, state)
    expected, _ = pad_packed_sequence(expected, batch_first=True, total_length=steps)
    expected_grads = _grads(expected, expected_final, [x, *theirs.parameters()])

    for backend, packing, groups in (
        ("fast", False, 1),
        ("fast", False, 2),
        ("fast", True, 1),
        ("reference", False, 1),
    ):
        ours = ours_cls(case["input_size"], h, batch_first=True, backend=backend, **config).double()
        ours.load_state_dict(theirs.state_dict())
        ours._use_packing = lambda x, lengths, packing=packing: packing
        ours._length_groups = lambda lengths, groups=groups: groups
        output, final = ours(x, state, lengths=lengths)
        torch.testing.assert_close(output, expected, atol=1e-10, rtol=0)
        for a, b in zip(_tuple(final), _tuple(expected_final), strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        for a, b in zip(_grads(output, final, [x, *ours.parameters()]), expected_grads, strict=True):
            torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def _grads(output, final, inputs):
    """Gradients of a loss that weighs every entry of the output and final state differently."""
    loss = sum(
        (t * torch.arange(t.numel(), dtype=t.dtype).view_as(t).cos()).sum() for t in (output, *_tuple(final))
    )
    return torch.autograd.grad(loss, inputs)
