"""The layers on a GPU: the fast path (cuDNN, frozen padding with ``where``) equals torch.nn fed packed
sequences there, padding values never matter, and autocast keeps padded steps frozen.

Skipped without CUDA (CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""

import pytest
import torch

from test_recurrent import CELLS, RAGGED, as_tuple, compare, inputs, make_pair, run_torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def full_precision():
    """cuDNN's RNNs use TF32 by default; the equality tests compare float32 to float32."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


def on_gpu(cell, num_layers, bidirectional, backend="fast"):
    ours, theirs = make_pair(cell, num_layers, bidirectional, backend)
    return ours.cuda(), theirs.cuda()


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", list(CELLS))
def test_fast_path_equals_torch_fed_a_packed_sequence_on_cuda(cell, num_layers, bidirectional):
    ours, theirs = on_gpu(cell, num_layers, bidirectional)
    x = inputs().detach().cuda().requires_grad_(True)
    for lengths in (None, torch.tensor(RAGGED)):
        compare(ours, theirs, x, lengths)


@pytest.mark.parametrize("cell", list(CELLS))
def test_initial_state_on_cuda(cell):
    ours, theirs = on_gpu(cell, 2, True)
    h0 = torch.randn(4, len(RAGGED), ours.hidden_size, device="cuda", requires_grad=True)
    state = (h0, torch.randn_like(h0).requires_grad_(True)) if cell == "lstm" else h0
    compare(ours, theirs, inputs().detach().cuda().requires_grad_(True), torch.tensor(RAGGED), state)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_values_never_matter_on_cuda(cell):
    ours, _ = on_gpu(cell, 2, True)
    x, lengths = inputs().detach().cuda(), torch.tensor(RAGGED)
    expected, expected_final = ours(x, lengths=lengths)
    for fill in (1e30, float("inf"), float("nan")):
        garbage = x.clone()
        for i, n in enumerate(RAGGED):
            garbage[i, n:] = fill
        output, final = ours(garbage, lengths=lengths)
        torch.testing.assert_close(output, expected, msg=str(fill))
        torch.testing.assert_close(as_tuple(final), as_tuple(expected_final), msg=str(fill))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_autocast_keeps_padding_frozen(cell, dtype):
    """Under autocast the kernels run in half precision: the saturating column (±1e4) must still
    freeze the state exactly and zero an LSTM's output at padded steps."""
    ours, theirs = on_gpu(cell, 2, True)
    x, lengths = inputs().detach().cuda(), torch.tensor(RAGGED)
    with torch.autocast("cuda", dtype=dtype):
        output, final = ours(x, lengths=lengths)
        expected, expected_final = run_torch(theirs, x, lengths)
    for i, n in enumerate(RAGGED):
        if n < output.shape[1]:
            assert output[i, n:].abs().max() == 0, i
    torch.testing.assert_close(output.float(), expected.float(), atol=2e-2, rtol=0)
    for a, b in zip(as_tuple(final), expected_final, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=2e-2, rtol=0)
