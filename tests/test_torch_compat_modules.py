"""PyTorch's ``test/test_modules.py`` for its recurrent modules, driven by their ``ModuleInfo``s, run
against ``rnnkit.nn``.

The samples are PyTorch's own (``torch.testing._internal.common_modules.module_db``: the inputs of
``torch.nn.RNN``, ``GRU``, ``LSTM`` and the three cells, packed sequences, projections and the error
inputs included); rnnkit's class is built where ``test_modules.py`` builds ``torch.nn``'s, on both of
its backends, and its results are compared with ``torch.nn``'s on the same weights. Each test names
the ``test_modules.py`` test it follows. CUDA-only tests (``test_cpu_gpu_parity``,
``test_multiple_device_transfer``) are not here: this suite runs on CPU.
"""

import io
import itertools

import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

import rnnkit.nn as rk

RNNKIT = {
    torch.nn.RNN: rk.RNN,
    torch.nn.GRU: rk.GRU,
    torch.nn.LSTM: rk.LSTM,
    torch.nn.RNNCell: rk.RNNCell,
    torch.nn.GRUCell: rk.GRUCell,
    torch.nn.LSTMCell: rk.LSTMCell,
}
INFOS = {info.module_cls: info for info in module_db if info.module_cls in RNNKIT}
MODULES = list(RNNKIT)
NAMES = [cls.__name__ for cls in MODULES]
LAYERS = (torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM)
BACKENDS = ["fast", "reference"]
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def samples(torch_cls, dtype, requires_grad=False):
    """PyTorch's sample inputs for ``torch_cls`` (packed sequences included)."""
    info = INFOS[torch_cls]
    extra = {"with_packed_sequence": True} if torch_cls in (torch.nn.RNN, torch.nn.GRU) else {}
    return info.module_inputs_func(
        info, device="cpu", dtype=dtype, requires_grad=requires_grad, training=False, **extra
    )


def build(torch_cls, sample, backend, dtype):
    """torch's module and rnnkit's for one sample, with the same weights."""
    args, kwargs = sample.constructor_input.args, dict(sample.constructor_input.kwargs)
    torch.manual_seed(0)
    theirs = torch_cls(*args, **kwargs).to(dtype)
    if torch_cls in LAYERS:
        kwargs["backend"] = backend
    ours = RNNKIT[torch_cls](*args, **kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.eval(), theirs.eval()


def flat(result):
    """Every tensor of a module's result, in order (outputs, packed data, states)."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, PackedSequence):
        return [result.data]
    return [t for part in result for t in flat(part)]


def assert_results_equal(a, b, dtype):
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    for x, y in zip(flat(a), flat(b), strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


def backends(torch_cls):
    return BACKENDS if torch_cls in LAYERS else ["-"]


FORWARD_CASES = [
    pytest.param(cls, backend, dtype, id=f"{cls.__name__}-{backend}-{dtype}")
    for cls in MODULES
    for backend in backends(cls)
    for dtype in DTYPES
]


@pytest.mark.parametrize("torch_cls, backend, dtype", FORWARD_CASES)
def test_forward(torch_cls, backend, dtype):
    """test_modules.py ``test_forward`` (and the samples' no-batch-dim references): every sample gives
    torch.nn's result; the output keeps the input's dtype."""
    dtype = DTYPES[dtype]
    for sample in samples(torch_cls, dtype):
        ours, theirs = build(torch_cls, sample, backend, dtype)
        args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
        expected, got = theirs(*args, **kwargs), ours(*args, **kwargs)
        assert type(got) is type(expected) and type(got[0]) is type(expected[0])
        assert_results_equal(got, expected, dtype)
        assert all(t.dtype == dtype for t in flat(got))


@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_errors(torch_cls):
    """test_modules.py ``test_errors``: every error input raises torch's exception type and message."""
    info = INFOS[torch_cls]
    for dtype in DTYPES.values():
        errors = info.module_error_inputs_func(
            info, device="cpu", dtype=dtype, requires_grad=False, training=False
        )
        for error in errors:
            sample = error.module_error_input
            args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
            if error.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
                with pytest.raises(error.error_type, match=error.error_regex):
                    RNNKIT[torch_cls](*args, **kwargs)
            else:
                module = RNNKIT[torch_cls](*args, **kwargs)
                with pytest.raises(error.error_type, match=error.error_regex):
                    module(*sample.forward_input.args, **sample.forward_input.kwargs)


def _gradient_cases():
    for cls in MODULES:
        for backend in backends(cls):
            yield pytest.param(cls, backend, id=f"{cls.__name__}-{backend}")


@pytest.mark.parametrize("torch_cls, backend", list(_gradient_cases()))
def test_grad_and_gradgrad(torch_cls, backend):
    """test_modules.py ``test_grad`` and ``test_gradgrad``: ``gradcheck`` and ``gradgradcheck`` in
    float64 over inputs and parameters (through ``torch.func.functional_call``, as there). To keep the
    suite fast (each check perturbs every parameter): gradcheck on every fourth sample (every eighth on
    the slower reference path), gradgradcheck on two of them; test_forward compares every sample's
    results, and test_packed_sequence_gradients packed gradients, with torch.nn's."""
    step = 4 if backend == "fast" else 8
    for i, sample in enumerate(samples(torch_cls, torch.float64, requires_grad=True)[::step]):
        ours, _ = build(torch_cls, sample, backend, torch.float64)
        args = sample.forward_input.args
        if any(isinstance(a, PackedSequence) for a in args):
            continue  # a PackedSequence is not a gradcheck input; test_forward covers its gradients below
        names = [name for name, _ in ours.named_parameters()]
        params = tuple(p.detach().requires_grad_() for p in ours.parameters())
        inputs = [t for a in args for t in (a if isinstance(a, tuple) else (a,))]
        shape = [len(a) if isinstance(a, tuple) else None for a in args]

        def run(*flat_inputs, ours=ours, names=names, shape=shape):
            tensors, rebuilt = list(flat_inputs[: len(flat_inputs) - len(names)]), []
            for size in shape:
                rebuilt.append(tensors.pop(0) if size is None else tuple(tensors.pop(0) for _ in range(size)))
            weights = dict(zip(names, flat_inputs[len(flat_inputs) - len(names) :], strict=True))
            return tuple(flat(functional_call(ours, weights, tuple(rebuilt))))

        all_inputs = (*inputs, *params)
        assert torch.autograd.gradcheck(run, all_inputs, check_batched_grad=False)
        if i < 2:
            assert torch.autograd.gradgradcheck(run, all_inputs, check_batched_grad=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("torch_cls", [torch.nn.RNN, torch.nn.GRU], ids=["RNN", "GRU"])
def test_packed_sequence_gradients(torch_cls, backend):
    """The packed samples' gradients (which gradcheck cannot take) against torch.nn's."""
    for sample in samples(torch_cls, torch.float64, requires_grad=True):
        packed = sample.forward_input.args[0]
        if not isinstance(packed, PackedSequence):
            continue
        ours, theirs = build(torch_cls, sample, backend, torch.float64)
        grads = []
        for module in (ours, theirs):
            output, h_n = module(packed)
            total = (
                output.data * output.data.new_tensor(range(output.data.numel())).view_as(output.data).sin()
            ).sum()
            grads.append(torch.autograd.grad(total + h_n.sum(), [packed.data, *module.parameters()]))
        torch.testing.assert_close(grads[0], grads[1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_factory_kwargs(torch_cls):
    """test_modules.py ``test_factory_kwargs``: ``device=`` and ``dtype=`` place every parameter, the
    meta device included."""
    sample = samples(torch_cls, torch.float64)[0]
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    module = RNNKIT[torch_cls](*args, **kwargs, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in module.parameters())
    meta = RNNKIT[torch_cls](*args, **kwargs, device="meta")
    assert all(p.is_meta for p in meta.parameters())
    with torch.device("meta"):
        assert all(p.is_meta for p in RNNKIT[torch_cls](*args, **kwargs).parameters())


@pytest.mark.parametrize("swap", [False, True], ids=["assign", "swap"])
@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_to_and_to_empty(torch_cls, swap):
    """test_modules.py ``test_to`` (parameters converted in place or swapped, per
    ``torch.__future__.set_swap_module_params_on_conversion``) and ``test_to_empty``: the module still
    gives torch.nn's results in the new dtype, its ``_flat_weights`` the module's own parameters."""
    sample = _tensor_samples(torch_cls, torch.float32)[1]
    ours, theirs = build(torch_cls, sample, "auto", torch.float32)
    before = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(swap)
    try:
        ours, theirs = ours.to(torch.float64), theirs.to(torch.float64)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(before)
    args = [
        a.double() if isinstance(a, torch.Tensor) else tuple(t.double() for t in a)
        for a in sample.forward_input.args
    ]
    assert_results_equal(ours(*args), theirs(*args), torch.float64)
    if torch_cls in LAYERS:
        assert all(w is p for w, p in zip(ours._flat_weights, ours.parameters(), strict=True))
    empty = RNNKIT[torch_cls](
        *sample.constructor_input.args, **sample.constructor_input.kwargs, device="meta"
    )
    empty.to_empty(device="cpu")
    assert all(p.device.type == "cpu" for p in empty.parameters())
    empty.load_state_dict(theirs.float().state_dict())
    float_args = [a.float() if isinstance(a, torch.Tensor) else tuple(t.float() for t in a) for a in args]
    assert_results_equal(empty(*float_args), theirs(*float_args), torch.float32)


@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_repr_pickle_and_save_load(torch_cls):
    """test_modules.py ``test_repr``, ``test_pickle`` and ``test_save_load``: the repr is torch's (an RNN
    adds its nonlinearity, which torch leaves out), and a whole module saved and loaded gives the same
    results."""
    for sample in samples(torch_cls, torch.float64)[:4]:
        ours, theirs = build(torch_cls, sample, "auto", torch.float64)
        assert repr(ours).startswith(repr(theirs)[:-1])
        buffer = io.BytesIO()
        torch.save(ours, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        args = sample.forward_input.args
        assert_results_equal(loaded(*args), ours(*args), torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_non_contiguous_tensors(torch_cls, backend):
    """test_modules.py ``test_non_contiguous_tensors``: non-contiguous inputs and states give the
    contiguous ones' results."""
    if backend == "reference" and torch_cls not in LAYERS:
        pytest.skip("cells have one backend")

    def spread(t):
        wide = torch.stack([t, torch.full_like(t, float("nan"))], dim=-1)  # every other element is t's
        return wide[..., 0].detach().requires_grad_(t.requires_grad)

    for sample in samples(torch_cls, torch.float64):
        args = sample.forward_input.args
        if any(isinstance(a, PackedSequence) for a in args):
            continue
        ours, _ = build(torch_cls, sample, backend, torch.float64)
        loose = tuple(tuple(spread(t) for t in a) if isinstance(a, tuple) else spread(a) for a in args)
        assert not loose[0].is_contiguous()
        assert_results_equal(ours(*loose), ours(*args), torch.float64)


# -- compilation ---------------------------------------------------------------------------------


def _tensor_samples(torch_cls, dtype=torch.float64):
    return [
        s
        for s in samples(torch_cls, dtype)
        if not any(isinstance(a, PackedSequence) for a in s.forward_input.args)
    ]


@pytest.mark.parametrize("torch_cls", MODULES, ids=NAMES)
def test_jit_script(torch_cls):
    """``torch.jit.script`` compiles every module and gives its eager results on PyTorch's samples
    (a layer compiles as its fast path: see ``rnnkit.nn.scripted``), with the same state dict."""
    for sample in _tensor_samples(torch_cls)[::3]:
        ours, _ = build(torch_cls, sample, "auto", torch.float64)
        scripted = torch.jit.script(ours)
        assert list(scripted.state_dict()) == list(ours.state_dict())
        args = sample.forward_input.args
        assert_results_equal(scripted(*args), ours(*args), torch.float64)


def test_jit_script_inside_a_model():
    """A model holding an rnnkit layer scripts, and its scripted forward runs the layer's fast path."""

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = rk.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            output, _ = self.lstm(x)
            return self.head(output)

    model = Tagger()
    x = torch.randn(5, 2, 3)
    expected = model(x)
    torch.testing.assert_close(torch.jit.script(model)(x), expected)


COMPILE_CASES = [
    pytest.param(cls, compiler, id=f"{cls.__name__}-{compiler}")
    for cls in MODULES
    for compiler in ("eager", "inductor")
]


@pytest.mark.parametrize("torch_cls, compiler", COMPILE_CASES)
def test_torch_compile(torch_cls, compiler):
    """``torch.compile`` (eager and inductor backends) gives the eager results; with the eager backend
    also for ``lengths=`` (one sample per module, tiny: inductor unrolls the time loop, and its
    compilation is what takes the time)."""
    torch._dynamo.reset()
    sample = _tensor_samples(torch_cls, torch.float32)[0]
    ours, _ = build(torch_cls, sample, "auto", torch.float32)
    args = sample.forward_input.args
    compiled = torch.compile(ours, backend=compiler, fullgraph=False)
    assert_results_equal(compiled(*args), ours(*args), torch.float32)
    if torch_cls in LAYERS and compiler == "eager":
        x = torch.randn(2, 3, ours.input_size)
        ragged = RNNKIT[torch_cls](ours.input_size, 3, batch_first=True, bidirectional=True)
        lengths = torch.tensor([3, 2])
        compiled = torch.compile(ragged, backend=compiler)
        assert_results_equal(compiled(x, lengths=lengths), ragged(x, lengths=lengths), torch.float32)


def test_every_module_info_is_used():
    """The six ModuleInfos exist in this torch (a renamed one would silently drop its tests)."""
    assert set(INFOS) == set(RNNKIT)
    assert sum(1 for _ in itertools.chain(*(samples(cls, torch.float64) for cls in MODULES))) > 100
