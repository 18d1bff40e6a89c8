"""PyTorch's own tests for its recurrent modules (``test/test_nn.py``), run against ``rnnkit.nn``.

Each test names the PyTorch test it is adapted from. The adaptations: rnnkit's class is built where
the original builds ``torch.nn``'s; a test that ran on CPU and CUDA runs on CPU; results are also
compared with ``torch.nn`` on the same weights; and every layer test runs on both of rnnkit's
backends (``fast``: PyTorch's fused kernels, ``reference``: the cell equations step by step).
Sizes are PyTorch's unless they were large only to be slow.
"""

import copy
import io
import itertools
import re
import warnings

import pytest
import torch
import torch.nn.utils.rnn as rnn_utils
from torch.autograd import gradcheck, gradgradcheck

import rnnkit.nn as rk

LAYERS = {"RNN": (rk.RNN, torch.nn.RNN), "GRU": (rk.GRU, torch.nn.GRU), "LSTM": (rk.LSTM, torch.nn.LSTM)}
CELLS = {
    "RNNCell": (rk.RNNCell, torch.nn.RNNCell),
    "GRUCell": (rk.GRUCell, torch.nn.GRUCell),
    "LSTMCell": (rk.LSTMCell, torch.nn.LSTMCell),
}
BACKENDS = ["fast", "reference"]


def twin(mode, *args, backend="fast", dtype=torch.float64, **kwargs):
    """rnnkit's layer and torch's, built with the same arguments and holding the same weights."""
    ours_cls, torch_cls = LAYERS[mode]
    theirs = torch_cls(*args, **kwargs).to(dtype)
    ours = ours_cls(*args, backend=backend, **kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def assert_same_result(a, b, atol=1e-7):
    """Outputs (tensors or PackedSequences) and states of two calls agree."""
    out_a, out_b = a[0], b[0]
    if isinstance(out_a, rnn_utils.PackedSequence):
        for x, y in zip(out_a, out_b, strict=True):
            assert (x is None and y is None) or torch.allclose(x, y, atol=atol, rtol=0)
    else:
        torch.testing.assert_close(out_a, out_b, atol=atol, rtol=0)
    for x, y in zip(as_tuple(a[1]), as_tuple(b[1]), strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


# -- cells -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", ["RNNCell", "GRUCell"])
def test_RNN_cell(name, bias):
    """test_nn.py ``test_RNN_cell``: six steps with and without bias, then backward (plus: torch's
    numbers)."""
    ours_cls, torch_cls = CELLS[name]
    theirs = torch_cls(10, 20, bias=bias).double()
    cell = ours_cls(10, 20, bias=bias).double()
    cell.load_state_dict(theirs.state_dict())
    assert (cell.bias_ih is None) == (not bias)
    x = torch.randn(3, 10, dtype=torch.float64)
    hx = expected = torch.randn(3, 20, dtype=torch.float64)
    for _ in range(6):
        hx, expected = cell(x, hx), theirs(x, expected)
    torch.testing.assert_close(hx, expected)
    hx.sum().backward()


@pytest.mark.parametrize("bias", [True, False])
def test_LSTM_cell(bias):
    """test_nn.py ``test_LSTM_cell``: a smoke test of six steps and backward (plus: torch's numbers)."""
    theirs = torch.nn.LSTMCell(10, 20, bias=bias).double()
    lstm = rk.LSTMCell(10, 20, bias=bias).double()
    lstm.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 10, dtype=torch.float64)
    hx, cx = torch.randn(3, 20, dtype=torch.float64), torch.randn(3, 20, dtype=torch.float64)
    expected = (hx, cx)
    for _ in range(6):
        hx, cx = lstm(x, (hx, cx))
        expected = theirs(x, expected)
    torch.testing.assert_close((hx, cx), expected)
    (hx + cx).sum().backward()


def test_LSTM_cell_forward_input_size_and_hidden_size():
    """test_nn.py ``test_LSTM_cell_forward_input_size`` and ``test_LSTM_cell_forward_hidden_size``."""
    lstm = rk.LSTMCell(10, 20)
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 11 expected 10"):
        lstm(torch.randn(3, 11), (torch.randn(3, 20), torch.randn(3, 20)))
    hx, cx = torch.randn(3, 21), torch.randn(3, 20)
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 21, expected 20"):
        lstm(torch.randn(3, 10), (hx, cx))
    with pytest.raises(RuntimeError, match="hidden1 has inconsistent hidden_size: got 21, expected 20"):
        lstm(torch.randn(3, 10), (cx, hx))


@pytest.mark.parametrize("name", list(CELLS))
def test_RNN_cell_no_broadcasting(name):
    """test_nn.py ``test_RNN_cell_no_broadcasting``: mismatched batch, hidden or input sizes raise,
    never broadcast (every cell; the original checks the state in either place of an LSTM pair)."""
    cls = CELLS[name][0]
    good_input, good_hx = torch.randn(3, 10), torch.randn(3, 20)

    def states(bad):
        return [(bad, good_hx), (good_hx, bad)] if name == "LSTMCell" else [bad]

    for bad_input, bad_hx in (
        (good_input, torch.randn(1, 20)),  # hidden vs input batch size
        (good_input, torch.randn(3, 1)),  # hx's hidden_size vs the module's
        (torch.randn(3, 1), good_hx),  # input's input_size vs the module's
    ):
        for hx in states(bad_hx):
            with pytest.raises(RuntimeError):
                cls(10, 20)(bad_input, hx)


def test_lstmcell_backward_only_one_output_grad():
    """test_nn.py ``test_lstmcell_backward_only_one_output_grad`` (CUDA there, CPU here): a backward
    from ``h`` alone or ``c`` alone reaches the input."""
    cell = rk.LSTMCell(2, 3).double()
    s = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    for i in range(2):
        cell(s)[i].sum().backward()
        assert s.grad is not None and s.grad.abs().sum().item() != 0


@pytest.mark.parametrize("cell", ["RNNCell-relu", "RNNCell-tanh", "GRUCell"])
def test_RNN_cell_forward_zero_hidden_size(cell):
    """test_nn.py ``test_RNN_cell_forward_zero_hidden_size``: a cell of hidden_size 0 works."""
    module = rk.RNNCell(10, 0, nonlinearity=cell.split("-")[1]) if "-" in cell else rk.GRUCell(10, 0)
    assert module(torch.randn(3, 10), torch.randn(3, 0)).shape == (3, 0)


# -- layers: argument checks ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_rnn_args_check(mode, backend):
    """test_nn.py ``test_rnn_args_check``: a wrong input or hidden batch size, input size, hidden size
    or number of hidden rows raises RuntimeError (for an LSTM, in either place of the state pair)."""
    input_size, hidden_size, num_layers, batch_size, seq_len, bad_size = 3, 5, 2, 4, 6, 7
    good_input = (seq_len, batch_size, input_size)
    good_hidden = (num_layers, batch_size, hidden_size)

    def replace(shape, dim, size):
        return tuple(size if i == dim else s for i, s in enumerate(shape))

    cases = [
        (replace(good_input, 1, bad_size), good_hidden),
        (good_input, replace(good_hidden, 1, bad_size)),
        (replace(good_input, 2, bad_size), good_hidden),
        (good_input, replace(good_hidden, 2, bad_size)),
        (good_input, replace(good_hidden, 0, bad_size)),
    ]
    model = LAYERS[mode][0](input_size, hidden_size, num_layers, backend=backend)
    for input_shape, hidden_shape in cases:
        x, hidden = torch.randn(input_shape), torch.randn(hidden_shape)
        if mode != "LSTM":
            pairs = [hidden]
        elif hidden_shape == good_hidden:
            pairs = [(hidden, hidden)]
        else:
            pairs = [(hidden, torch.randn(good_hidden)), (torch.randn(good_hidden), hidden)]
        for hx in pairs:
            with pytest.raises(RuntimeError):
                model(x, hx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_projections_lstm_args_check(backend):
    """test_nn.py ``test_projections_lstm_args_check``: the same checks with ``proj_size``, where
    ``h`` has ``proj_size`` features and ``c`` ``hidden_size``."""
    input_size, hidden_size, proj_size, num_layers, batch_size, seq_len, bad_size = 3, 5, 2, 2, 4, 6, 7
    for bidirectional in (False, True):
        d = 2 if bidirectional else 1
        good_input = (seq_len, batch_size, input_size)
        good_h, good_c = (num_layers * d, batch_size, proj_size), (num_layers * d, batch_size, hidden_size)
        model = rk.LSTM(
            input_size,
            hidden_size,
            num_layers,
            proj_size=proj_size,
            bidirectional=bidirectional,
            backend=backend,
        )

        def replace(shape, dim, size):
            return tuple(size if i == dim else s for i, s in enumerate(shape))

        bad_calls = [
            (replace(good_input, 1, bad_size), good_h, good_c),
            (replace(good_input, 2, bad_size), good_h, good_c),
        ]
        for dim in range(3):
            bad_calls.append((good_input, replace(good_h, dim, bad_size), good_c))
            bad_calls.append((good_input, good_h, replace(good_c, dim, bad_size)))
        bad_calls.append((good_input, good_c, good_c))  # h with hidden_size rather than proj_size
        for input_shape, h_shape, c_shape in bad_calls:
            with pytest.raises(RuntimeError):
                model(torch.randn(input_shape), (torch.randn(h_shape), torch.randn(c_shape)))
        model(torch.randn(good_input), (torch.randn(good_h), torch.randn(good_c)))  # the right shapes run


def test_projections_errors_on_gru_and_rnn():
    """test_nn.py ``test_projections_errors_on_gru_and_rnn``."""
    for cls in (rk.RNN, rk.GRU):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
            cls(10, 20, proj_size=5)


def test_RNN_nonlinearity():
    """test_nn.py ``test_RNN_nonlinearity`` and ``test_RNN_nonlinearity_passed_as_arg``."""
    assert rk.RNN(1, 10).nonlinearity == "tanh"
    assert rk.RNN(1, 10, nonlinearity="relu").nonlinearity == "relu"
    assert rk.RNN(2, 3, 1, "relu").nonlinearity == "relu"  # the fourth positional argument, as in torch
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        rk.RNN(1, 10, nonlinearity="garbage")


def test_dropout_with_one_layer_warns_as_torch_does():
    """test_nn.py ``test_RNN_dropout_warning``: dropout with one layer warns (it acts between layers)."""
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rk.RNN(1, 2, 1, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rk.RNN(1, 2, 2, dropout=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_error_RNN_seq_len_zero(mode, backend):
    """test_nn.py ``test_error_RNN_seq_len_zero``: ``L = 0`` raises PyTorch's RuntimeError."""
    for bidirectional in (True, False):
        rnn = LAYERS[mode][0](5, 6, bidirectional=bidirectional, backend=backend)
        with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
            rnn(torch.ones(0, 10, 5))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_RNN_input_size_zero(mode, backend):
    """test_nn.py ``test_RNN_input_size_zero``: an empty batch (``N = 0``) runs, backward too
    (plus: with ``lengths=`` and ``batch_first``, and torch's output and state shapes)."""
    rnn = LAYERS[mode][0](input_size=3, hidden_size=4, backend=backend)
    outputs = rnn(torch.zeros(5, 0, 3))
    assert outputs[0].shape == (5, 0, 4)
    assert all(s.shape == (1, 0, 4) for s in as_tuple(outputs[1]))
    outputs[0].sum().backward()
    batch_first = LAYERS[mode][0](3, 4, batch_first=True, bidirectional=True, backend=backend)
    output, _ = batch_first(torch.zeros(0, 5, 3), lengths=torch.zeros(0, dtype=torch.long))
    assert output.shape == (0, 5, 8)


def test_hidden_size_zero_is_refused_as_torch_does():
    """common_modules.py error inputs of RNN/GRU/LSTM: ``hidden_size=0`` and ``num_layers=0`` raise
    ValueError."""
    for cls in (rk.RNN, rk.GRU, rk.LSTM):
        with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
            cls(10, 0, 1)
        with pytest.raises(ValueError, match="num_layers must be greater than zero"):
            cls(10, 10, 0)


# -- layers: states, dropout --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_hx_positional_or_keyword_and_unbatched(mode, backend):
    """``m(x, h0)`` and ``m(x, hx=h0)`` as torch takes them, time-major by default, and one unbatched
    sequence ``[L, E]`` with a ``[num_layers·D, H]`` state (test_modules.py's no-batch-dim samples)."""
    ours, theirs = twin(mode, 3, 5, 2, bidirectional=True, backend=backend)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    h0 = torch.randn(4, 4, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if mode == "LSTM" else h0
    expected = theirs(x, hx)
    assert_same_result(ours(x, hx), expected, atol=1e-12)
    assert_same_result(ours(x, hx=hx), expected, atol=1e-12)
    one = tuple(s[:, 0] for s in as_tuple(hx))
    one = one if mode == "LSTM" else one[0]
    assert_same_result(ours(x[:, 0], one), theirs(x[:, 0], one), atol=1e-12)
    with pytest.raises(RuntimeError, match="For unbatched 2-D input"):
        ours(x[:, 0], hx)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_rnn_initial_hidden_state(mode, backend):
    """test_nn.py ``test_rnn_initial_hidden_state``: a zero ``hx`` equals no ``hx``."""
    rnn = LAYERS[mode][0](30, 20, 2, backend=backend)
    x = torch.randn(10, 32, 30)
    hidden = torch.zeros(2, 32, 20)
    if mode == "LSTM":
        hidden = (hidden, hidden)
    assert_same_result(rnn(x, hidden), rnn(x), atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_projections_lstm_initial_hidden_state(backend):
    """test_nn.py ``test_projections_lstm_initial_hidden_state``: the same with ``proj_size``, both
    directions."""
    for bidirectional in (False, True):
        d = 2 if bidirectional else 1
        rnn = rk.LSTM(30, 20, 2, bidirectional=bidirectional, proj_size=10, backend=backend)
        x = torch.randn(10, 32, 30)
        hidden = (torch.zeros(2 * d, 32, 10), torch.zeros(2 * d, 32, 20))
        assert_same_result(rnn(x, hidden), rnn(x), atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_RNN_dropout(backend):
    """test_nn.py ``test_RNN_dropout``: dropout sits between layers, scaled by 1/(1-p); p = 1 zeroes
    the output (CPU only; hidden size 1000 as in the original, one step)."""
    for p in (0, 0.276, 0.731, 1):
        for train in (True, False):
            rnn = rk.RNN(10, 1000, 2, bias=False, dropout=p, nonlinearity="relu", backend=backend)
            rnn.train(train)
            with torch.no_grad():
                for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
                    getattr(rnn, name).fill_(1)
            output, hy = rnn(torch.ones(1, 1, 10), torch.zeros(2, 1, 1000))
            assert output.min() == output.max()
            value = float(output[0, 0, 0].detach())
            if p == 0 or not train:
                assert value == 10000
            elif p == 1:
                assert value == 0
            else:
                assert 8000 < value < 12000
                remainder = (value * (1 - p)) % 10
                assert min(remainder, 10 - remainder) < 1e-2
            assert hy[0].min() == hy[0].max() and hy[1].min() == hy[1].max()
            assert float(hy[0, 0, 0].detach()) == 10 and float(hy[1, 0, 0].detach()) == value


@pytest.mark.parametrize("backend", BACKENDS)
def test_RNN_dropout_state(backend):
    """test_nn.py ``test_RNN_dropout_state``: without dropout (or in eval) two calls and a saved and
    reloaded copy agree; with it, they differ."""
    for p in (0, 0.1234):
        for train in (True, False):
            rnn = rk.RNN(100, 100, 2, bias=False, dropout=p, nonlinearity="relu", backend=backend)
            rnn.train(train)
            x, hx = torch.rand(1, 1, 100), torch.rand(2, 1, 100)
            output1, hy1 = rnn(x, hx)
            output2, hy2 = rnn(x, hx)
            buffer = io.BytesIO()
            torch.save(rnn, buffer)
            buffer.seek(0)
            rnn2 = torch.load(buffer, weights_only=False)
            rnn2.flatten_parameters()
            output3, hy3 = rnn2(x, hx)
            if p == 0 or not train:
                assert torch.equal(output1, output2) and torch.equal(output1, output3)
                assert torch.equal(hy1, hy2) and torch.equal(hy1, hy3)
            else:
                assert not torch.equal(output1, output2) and not torch.equal(output1, output3)
                assert not torch.equal(hy1, hy2) and not torch.equal(hy1, hy3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("train", [True, False])
def test_RNN_change_dropout(train, backend):
    """test_nn.py ``test_RNN_change_dropout``: ``rnn.dropout`` changed between calls takes effect."""
    rnn = rk.RNN(100, 100, 2, dropout=0, nonlinearity="relu", backend=backend)
    rnn.train(train)
    x = torch.rand(3, 2, 100)
    previous = None
    for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
        rnn.dropout = p
        output1, hy1 = rnn(x)
        output2, hy2 = rnn(x)
        if p in (0, 1) or not train:
            assert torch.equal(output1, output2) and torch.equal(hy1, hy2)
        else:
            assert not torch.equal(output1, output2) and not torch.equal(hy1, hy2)
        if previous is not None:
            assert torch.equal(output1, previous) != train and torch.equal(output2, previous) != train
        previous = output1


# -- layers: the same numbers as torch.nn --------------------------------------------------------


def _cpu_vs_cudnn_cases():
    for (
        mode,
        bias,
        bidirectional,
        batch_first,
        contiguous,
        variable_len,
        lens_as_tensor,
        proj,
    ) in itertools.product(
        LAYERS,
        (True, False),
        (False, True),
        (False, True),
        (True, False),
        (False, True),
        (False, True),
        (0, 3),
    ):
        if (proj and mode != "LSTM") or (lens_as_tensor and not variable_len):
            continue
        yield pytest.param(
            mode, bias, bidirectional, batch_first, contiguous, variable_len, lens_as_tensor, proj,
            id=f"{mode}-bias{int(bias)}-bi{int(bidirectional)}-bf{int(batch_first)}-contig{int(contiguous)}"
            f"-var{int(variable_len)}-lens{int(lens_as_tensor)}-proj{proj}",
        )  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "mode, bias, bidirectional, batch_first, contiguous, variable_len, lens_as_tensor, proj",
    list(_cpu_vs_cudnn_cases()),
)
def test_RNN_cpu_vs_torch(
    mode, bias, bidirectional, batch_first, contiguous, variable_len, lens_as_tensor, proj, backend
):
    """test_nn.py ``_test_RNN_cpu_vs_cudnn`` (``test_RNN_cpu_vs_cudnn_no_dropout``), CPU part: the same
    grid of bias, directions, layout, contiguity, variable lengths (packed, lengths as a list or a
    tensor) and projections, forward and backward -- compared with ``torch.nn`` rather than cuDNN."""
    cpu_vs_torch(
        mode, bias, bidirectional, batch_first, contiguous, variable_len, lens_as_tensor, proj, backend
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "mode, variable_len, proj, dropout, nonlinearity",
    [
        *[(mode, variable_len, 0, 1.0, None) for mode in LAYERS for variable_len in (False, True)],
        ("LSTM", False, 3, 1.0, None),
        ("LSTM", True, 3, 1.0, None),
        ("RNN", False, 0, 0.0, "tanh"),
        ("RNN", False, 0, 0.0, "relu"),
        ("RNN", True, 0, 0.0, "relu"),
    ],
)
def test_RNN_cpu_vs_torch_with_dropout_and_nonlinearity(
    mode, variable_len, proj, dropout, nonlinearity, backend
):
    """test_nn.py ``_test_RNN_cpu_vs_cudnn`` (``test_RNN_cpu_vs_cudnn_with_dropout``: dropout 1, the
    one value that is deterministic in training; and its ``tanh``/``relu`` loop), CPU part."""
    extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
    cpu_vs_torch(mode, True, True, False, True, variable_len, False, proj, backend, dropout=dropout, **extra)


def cpu_vs_torch(
    mode, bias, bidirectional, batch_first, contiguous, variable_len, lens_as_tensor, proj, backend, **kwargs
):
    """Forward and backward of rnnkit's layer and torch's (in training mode) on the same weights, input
    and state; outputs, final states and every gradient agree."""
    input_size, hidden_size, num_layers, seq_length, batch = 10, 6, 2, 7, 6
    if proj:
        kwargs["proj_size"] = proj
    ours, theirs = twin(
        mode, input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
        bidirectional=bidirectional, backend=backend, **kwargs,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    d = 2 if bidirectional else 1
    shape = (batch, seq_length, input_size) if batch_first else (seq_length, batch, input_size)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    if not contiguous:
        x = torch.randn(*shape[:-1], 2 * input_size, generator=g, dtype=torch.float64)[..., ::2]
        assert not x.is_contiguous()
    h0 = torch.randn(num_layers * d, batch, proj or hidden_size, generator=g, dtype=torch.float64)
    hx = (
        (h0, torch.randn(num_layers * d, batch, hidden_size, generator=g, dtype=torch.float64))
        if mode == "LSTM"
        else h0
    )
    if not contiguous:
        hx = tuple(s.transpose(0, 1).contiguous().transpose(0, 1) for s in as_tuple(hx))
        hx = hx if mode == "LSTM" else hx[0]
    results = []
    for module in (ours, theirs):
        leaf = x.detach().requires_grad_()
        state = tuple(s.detach().requires_grad_() for s in as_tuple(hx))
        inp = leaf
        if variable_len:
            lengths = [7, 5, 5, 2, 1, 1]
            lengths = torch.tensor(lengths) if lens_as_tensor else lengths
            inp = rnn_utils.pack_padded_sequence(leaf, lengths, batch_first=batch_first)
        output, final = module(inp, state if mode == "LSTM" else state[0])
        if variable_len:
            output, _ = rnn_utils.pad_packed_sequence(output, batch_first=batch_first)
        total = output.sum() + sum((s * 2).sum() for s in as_tuple(final))
        grads = torch.autograd.grad(total, [leaf, *state, *module.parameters()])
        results.append((output, as_tuple(final), grads))
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-10, rtol=0)
    torch.testing.assert_close(final_a, final_b, atol=1e-10, rtol=0)
    torch.testing.assert_close(grads_a, grads_b, atol=1e-9, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_sequence(backend, dtype):
    """test_nn.py ``test_variable_sequence``: a packed batch equals each sequence run on its own,
    forward and backward, sorted or not, with or without initial state and projection."""
    input_size, hidden_size, num_layers = 3, 4, 2
    atol = 1e-5 if dtype == torch.float32 else 1e-10
    cases = [
        (True, [5]),
        (False, [5]),
        (True, [10, 10, 6, 2, 2, 1, 1]),
        (False, [10, 10, 6, 2, 2, 1, 1]),
        (False, [2, 1, 3, 2, 10, 5, 3]),
    ]
    for (enforce_sorted, lengths), default_hiddens, proj_size in itertools.product(
        cases, (True, False), (0, 2)
    ):
        n, longest = len(lengths), max(lengths)
        x_leaf = torch.randn(longest, n, input_size, dtype=dtype, requires_grad=True)
        lstm = rk.LSTM(
            input_size, hidden_size, num_layers, bidirectional=True, proj_size=proj_size, backend=backend
        ).to(dtype)
        lstm2 = copy.deepcopy(lstm)
        hidden0 = None
        if not default_hiddens:
            hidden0 = (
                torch.randn(2 * num_layers, n, proj_size or hidden_size, dtype=dtype),
                torch.randn(2 * num_layers, n, hidden_size, dtype=dtype),
            )
        outputs, hiddens = [], []
        for i, length in enumerate(lengths):  # each sequence on its own
            hidden_i = None if hidden0 is None else tuple(s[:, i : i + 1] for s in hidden0)
            out, hidden = lstm2(x_leaf[:length, i : i + 1], hidden_i)
            outputs.append(torch.cat([out, out.new_zeros(longest - length, *out.shape[1:])]))
            hiddens.append(hidden)
        seq_out = torch.cat(outputs, 1)
        seq_hidden = tuple(torch.cat(parts, 1) for parts in zip(*hiddens, strict=True))

        packed = rnn_utils.pack_padded_sequence(x_leaf, lengths, enforce_sorted=enforce_sorted)
        packed_out, packed_hidden = lstm(packed, hidden0)
        unpacked, unpacked_len = rnn_utils.pad_packed_sequence(packed_out)
        torch.testing.assert_close(packed_hidden, seq_hidden, atol=atol, rtol=0)
        torch.testing.assert_close(unpacked, seq_out, atol=atol, rtol=0)
        assert unpacked_len.tolist() == lengths

        seq_out.sum().backward()
        grad_x = x_leaf.grad.clone()
        x_leaf.grad.zero_()
        unpacked.sum().backward()
        torch.testing.assert_close(x_leaf.grad, grad_x, atol=atol, rtol=0)
        for p1, p2 in zip(lstm.parameters(), lstm2.parameters(), strict=True):
            torch.testing.assert_close(p1.grad, p2.grad, atol=10 * atol, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_rnn_retain_variables(mode, backend):
    """test_nn.py ``test_rnn_retain_variables``: backward through a retained graph gives the same
    gradients every time."""
    rnn = LAYERS[mode][0](10, 20, num_layers=2, backend=backend).double()
    x = torch.randn(5, 6, 10, dtype=torch.float64, requires_grad=True)
    output = rnn(x)
    output[0].sum().backward(retain_graph=True)
    grads = [x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]
    for _ in range(4):
        rnn.zero_grad()
        x.grad.zero_()
        output[0].sum().backward(retain_graph=True)
        again = [x.grad] + [p.grad for p in rnn.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(grads, again, strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_LSTM_and_GRU_grad_and_gradgrad(mode, backend):
    """test_nn.py ``test_LSTM_grad_and_gradgrad`` / ``test_GRU_grad_and_gradgrad`` (float64, with and
    without bias)."""
    hsize = 4
    x = torch.rand(1, 3, hsize, dtype=torch.float64, requires_grad=True)
    for bias in (True, False):
        mod = LAYERS[mode][0](hsize, hsize, bias=bias, backend=backend).double()

        def flat(x, mod=mod):
            output, state = mod(x)
            return (output, *as_tuple(state))

        assert gradcheck(flat, (x,), check_batched_grad=False)
        assert gradgradcheck(flat, (x,), check_batched_grad=False)


# -- attributes, state dicts, parametrisations ----------------------------------------------------


def test_rnn_weight_norm():
    """test_nn.py ``test_rnn_weight_norm``: weight norm on one weight turns it into a plain tensor in
    ``_flat_weights``; removing it restores the Parameter (plus: the layer still runs, as torch's)."""

    def check_weight_norm(layer, name, num_params):
        layer = torch.nn.utils.weight_norm(layer, name=name)
        assert sum(isinstance(p, torch.nn.Parameter) for p in layer._flat_weights) == num_params - 1
        layer(torch.randn(2, 1, 32))
        layer = torch.nn.utils.remove_weight_norm(layer, name=name)
        assert sum(isinstance(p, torch.nn.Parameter) for p in layer._flat_weights) == num_params
        assert name in layer._parameters and layer._parameters[name] is not None
        assert name + "_v" not in layer._parameters and name + "_g" not in layer._parameters
        parameters = dict(layer.named_parameters())
        assert (
            parameters[name] is not None and name + "_v" not in parameters and name + "_g" not in parameters
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # weight_norm is deprecated in favour of parametrize
        check_weight_norm(rk.LSTM(32, 32), "weight_ih_l0", 4)
        check_weight_norm(rk.LSTM(32, 32, proj_size=16), "weight_hr_l0", 5)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_torch_attributes(mode):
    """The attributes torch.nn's modules have (``RNNBase``): names, ``all_weights``, ``_flat_weights``."""
    kwargs = {"proj_size": 2} if mode == "LSTM" else {}
    ours, theirs = twin(mode, 3, 5, 2, bias=False, bidirectional=True, backend="auto", **kwargs)
    for name in (
        "mode",
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
    ):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.proj_size == theirs.proj_size
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert [[tuple(w.shape) for w in ws] for ws in ours.all_weights] == [
        [tuple(w.shape) for w in ws] for ws in theirs.all_weights
    ]
    assert all(a is b for a, b in zip(ours._flat_weights, ours.parameters(), strict=True))
    assert isinstance(ours, torch.nn.RNNBase)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_flatten_parameters_after_double_and_after_a_deleted_weight(mode):
    """``m.double()`` keeps ``_flat_weights`` in step; with a weight deleted, ``flatten_parameters``
    (called by ``.double()``) returns quietly, as torch's does."""
    for cls in LAYERS[mode]:
        layer = cls(3, 5, 2).double()
        assert all(w.dtype == torch.float64 for w in layer._flat_weights)
        assert all(a is b for a, b in zip(layer._flat_weights, layer.parameters(), strict=True))
        del layer.weight_hh_l0
        layer.float()
        layer.flatten_parameters()
        assert layer._flat_weights[1] is None


@pytest.mark.parametrize("mode", list(LAYERS))
def test_strict_load_state_dict_of_a_torch_model_without_bias(mode):
    """A ``bias=False`` torch.nn model's state dict loads strictly, and the two agree."""
    torch_cls = LAYERS[mode][1]
    theirs = torch_cls(3, 5, 2, bias=False, bidirectional=True).double()
    ours = LAYERS[mode][0](3, 5, 2, bias=False, bidirectional=True).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    assert_same_result(ours(x), theirs(x), atol=1e-12)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        ours.load_state_dict(torch_cls(3, 5, 2, bidirectional=True).state_dict())


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_attributes_and_bias_false_state_dict(name):
    """The cells' attributes and parameters are PyTorch's, ``bias=False`` included."""
    ours_cls, torch_cls = CELLS[name]
    theirs = torch_cls(3, 5, bias=False)
    ours = ours_cls(3, 5, bias=False)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert (ours.input_size, ours.hidden_size, ours.bias) == (3, 5, False)
    assert ours.bias_ih is None and ours.bias_hh is None
    assert isinstance(ours, torch.nn.RNNCellBase) and repr(ours) == repr(theirs)
    x = torch.randn(2, 3)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cudnn_forward_exception(backend):
    """test_nn.py ``test_cudnn_forward_exception`` (it runs on CPU too): a wrong state or input size
    raises RuntimeError with torch's messages, batch-first, with and without projection."""
    layers = [
        (rk.LSTM(10, 20, batch_first=True, backend=backend), (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))),
        (
            rk.LSTM(10, 20, batch_first=True, proj_size=10, backend=backend),
            (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19)),
        ),
        (rk.GRU(10, 20, batch_first=True, backend=backend), torch.zeros(1, 2, 19)),
        (rk.RNN(10, 20, batch_first=True, backend=backend), torch.zeros(1, 2, 19)),
    ]
    for layer, hidden in layers:
        with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
            layer(torch.randn(2, 3, 10), hidden)
        with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size")):
            layer(torch.randn(2, 3, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_flat_weights(backend):
    """test_nn.py ``test_partial_flat_weights`` (CUDA there; a dtype move here): with a weight deleted,
    moving the module does not fail, and with the weight put back it computes what it did."""
    m = rk.LSTM(10, 6, 2, backend=backend)
    x = torch.randn(3, 2, 10)
    expected = m(x)
    weight = m.weight_hh_l0
    del m.weight_hh_l0
    assert not hasattr(m, "weight_hh_l0")
    m.double()
    m.weight_hh_l0 = weight.double()  # a plain tensor, as .cuda() gives in the original
    torch.testing.assert_close(m(x.double())[0].float(), expected[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["LSTM", "LSTM-proj", "GRU", "RNN"])
def test_weight_tying(mode, backend):
    """test_nn.py ``test_cudnn_weight_tying``, CPU part: with ``bias_ih_l0_reverse`` tied to
    ``bias_ih_l0``, a training step moves both as one, as torch.nn's does."""
    kwargs = {"proj_size": 10} if mode == "LSTM-proj" else {}
    ours, theirs = twin(
        mode.split("-")[0], 10, 20, batch_first=True, bidirectional=True, backend=backend, **kwargs
    )
    x = torch.randn(5, 4, 10, dtype=torch.float64)
    h0 = torch.randn(2, 5, 10 if kwargs else 20, dtype=torch.float64)
    hx = (h0, torch.randn(2, 5, 20, dtype=torch.float64)) if mode.startswith("LSTM") else h0
    outputs = []
    for layer in (ours, theirs):
        layer.bias_ih_l0_reverse = layer.bias_ih_l0
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(x, hx)[0].sum().backward()
        optimizer.step()
        assert layer.bias_ih_l0_reverse is layer.bias_ih_l0
        outputs.append(layer(x, hx))
    assert_same_result(outputs[0], outputs[1], atol=1e-10)


def test_rnn_weight_norm_keeps_the_output():
    """test_nn.py ``test_RNN_cudnn_weight_norm``, CPU part: weight norm on ``weight_hh_l0`` or
    ``weight_hr_l0`` leaves the output as it was, and so does removing it."""
    for layer, name in (
        (rk.LSTM(10, 6, 2), "weight_hh_l0"),
        (rk.LSTM(10, 6, 2, proj_size=3), "weight_hr_l0"),
    ):
        x = torch.randn(7, 6, 10)
        expected = layer(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            layer = torch.nn.utils.weight_norm(layer, name=name)
            assert_same_result(layer(x), expected, atol=1e-6)
            layer = torch.nn.utils.remove_weight_norm(layer, name=name)
        assert_same_result(layer(x), expected, atol=1e-6)
