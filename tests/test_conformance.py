"""One conformance suite over every registered variant, both backends and every layer type.

Oracle: the NumPy reference backend (``ns.backends.use("numpy")``: plain NumPy on the layer contract,
NumPy convolutions) against the numba backend, float64, 1e-10; plus shapes, dtypes, determinism and
bad input. A variant registered tomorrow is picked up by ``ns.available()`` and tested here; a layer
type it does not support must be refused with a ValueError that names the variant and what is
supported, before any kernel runs.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten

LAYER_TYPES = ("dense", "conv", "rnn")
TOLERANCE = 1e-10


def _network(kind, dtype="float64", seed=0):
    if kind == "dense":
        return ns.mlp([6, 7, 5, 3], seed=seed, dtype=dtype)
    if kind == "conv":
        return ns.Network([Conv2d(1, 2, 3, padding=1), AvgPool2d(2), Flatten(), Dense(18, 3)],
                          input_shape=(1, 6, 6), seed=seed, dtype=dtype)
    return ns.rnn(3, 5, 3, seed=seed, dtype=dtype)


def _batch(kind, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = {"dense": (batch, 6), "conv": (batch, 1, 6, 6), "rnn": (batch, 4, 3)}[kind]
    x = rng.normal(size=shape)
    y = np.eye(3)[rng.integers(0, 3, batch)] * 0.8 + 0.1
    return x, y


def _variant(name, **extra):
    # Small hyper-parameters where the defaults are for long runs; the rules are unchanged.
    hyper = {"il": {"T": 6}, "ipc": {"T": 6}, "ilprox": {"T": 6, "gamma": 0.05}}.get(name, {})
    return ns.variant(name, **{**hyper, **extra})


def _step(name, kind, backend, dtype="float64"):
    net = _network(kind, dtype)
    x, y = _batch(kind)
    with ns.backends.use(backend):
        step = _variant(name).compute(net, x, y)
    return net, step


def _supported(name, kind) -> bool:
    try:
        _variant(name).check_network(_with_depth(_network(kind), kind))
    except ValueError as error:
        message = str(error)
        assert name in message and "supported" in message, message
        return False
    return True


def _with_depth(net, kind):
    if kind == "rnn":
        net.check_input(_batch(kind)[0])
    return net


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


CASES = [(name, kind) for name in ns.available() for kind in LAYER_TYPES]


@pytest.mark.parametrize("name,kind", CASES)
def test_backends_agree(name, kind):
    if not _supported(name, kind):
        x, y = _batch(kind)
        with pytest.raises(ValueError, match=name):
            _variant(name).compute(_network(kind), x, y)
        return
    net, fast = _step(name, kind, "numba")
    _, reference = _step(name, kind, "numpy")
    assert fast.grads.shape == net.params.shape and fast.grads.dtype == net.params.dtype
    assert np.any(fast.grads != 0)
    assert _relative(fast.grads, reference.grads) < TOLERANCE
    assert _relative(fast.output, reference.output) < TOLERANCE
    assert abs(fast.loss - reference.loss) <= TOLERANCE * max(1.0, abs(reference.loss))
    if fast.energies is not None:
        assert _relative(fast.energies, reference.energies) < TOLERANCE


@pytest.mark.parametrize("name,kind", CASES)
def test_simulator_traces_agree_across_backends(name, kind):
    if not _supported(name, kind) or name in ("implicit_sgd", "copi"):
        pytest.skip("no tick-by-tick circuit on this network")
    traces = {}
    for backend in ("numba", "numpy"):
        net = _network(kind)
        x, y = _batch(kind)
        with ns.backends.use(backend):
            traces[backend] = ns.Simulator(net, _variant(name)).run(x, y, record=("energy", "errors", "values"))
    fast, reference = traces["numba"], traces["numpy"]
    assert _relative(fast.energy, reference.energy) < TOLERANCE
    for l in range(len(fast.values)):
        assert _relative(fast.values[l], reference.values[l]) < TOLERANCE
        assert _relative(fast.errors[l], reference.errors[l]) < TOLERANCE


@pytest.mark.parametrize("name,kind", CASES)
def test_float32_and_determinism(name, kind):
    if not _supported(name, kind):
        pytest.skip("refused, checked in test_backends_agree")
    net, first = _step(name, kind, "numba", "float32")
    _, second = _step(name, kind, "numba", "float32")
    assert first.grads.dtype == np.float32
    assert np.all(np.isfinite(first.grads))
    assert np.array_equal(first.grads, second.grads)
    _, wide = _step(name, kind, "numba", "float64")
    assert _relative(first.grads, wide.grads) < 1e-3


@pytest.mark.parametrize("name", ns.available())
@pytest.mark.parametrize("backend", ns.backends.available())
def test_bad_input_is_refused_before_any_kernel(name, backend):
    net = _network("dense")
    before = net.params.copy()
    x, y = _batch("dense")
    with ns.backends.use(backend):
        with pytest.raises(ValueError, match="x"):
            _variant(name).compute(net, x[:, :5], y)
        with pytest.raises(ValueError, match="NaN|finite"):
            _variant(name).compute(net, np.full_like(x, np.nan), y)
        with pytest.raises(ValueError, match="y"):
            _variant(name).compute(net, x, y[:2])
    assert np.array_equal(net.params, before)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'cuda'.*numba, numpy"):
        with ns.backends.use("cuda"):
            pass
    with pytest.raises(TypeError, match="backend must be a string"):
        ns.backends.use(3).__enter__()


def test_numpy_backend_refuses_separate_feedback_where_an_op_lacks_it():
    """circuit.ops (bp's path) carries errors down through W only; asked for B on the NumPy
    backend, it says so instead of silently using W."""
    from neurosim.circuit import ops
    net = _network("dense")
    ws = net.workspace(2)
    with ns.backends.use("numpy"):
        with pytest.raises(ValueError, match="numpy backend"):
            ops.feedback(net, ws, 2, back=np.zeros_like(net.params))


@pytest.mark.parametrize("name", ["seqil", "ipc", "ilprox"])
@pytest.mark.parametrize("feedback", ["random", "learned"])
def test_scheduled_variants_with_separate_feedback_agree_across_backends(name, feedback):
    results = []
    for backend in ("numba", "numpy"):
        net = _network("dense")
        x, y = _batch("dense")
        variant = ns.variant(name, T=4, feedback=feedback)
        with ns.backends.use(backend):
            results.append(variant.gradients(net, x, y))
    for (a_w, a_b), (b_w, b_b) in zip(*results):
        assert _relative(a_w, b_w) < TOLERANCE and _relative(a_b, b_b) < TOLERANCE


@pytest.mark.parametrize("kind", ["conv", "rnn"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_fpa_with_unit_step_equals_bp_on_conv_and_rnn(kind, backend):
    net = _with_depth(_network(kind), kind)
    x, y = _batch(kind)
    with ns.backends.use(backend):
        bp = ns.variant("bp").compute(net, x, y).grads
        fpa = ns.variant("fpa", gamma=1.0, T=net.n_layers).compute(net, x, y).grads
    assert _relative(fpa, bp) < 1e-10


@pytest.mark.parametrize("name", ["seqil", "ipc", "ilprox"])
@pytest.mark.parametrize("kind", ["conv", "rnn"])
def test_scheduled_variants_train_conv_and_rnn(name, kind):
    """One SGD step with the variant's update lowers the loss on the batch (it is a descent step)."""
    net = _network(kind)
    x, y = _batch(kind, batch=8)
    hyper = {"output": "mse"} if name in ("seqil", "ilprox") else {}
    before = net.loss(x, y)
    trainer = ns.Trainer(net, ns.variant(name, **hyper), ns.optim.SGD(lr=0.05 if name != "ilprox" else 1.0))
    for _ in range(5):
        trainer.step(x, y)
    assert net.loss(x, y) < before


@pytest.mark.parametrize("name", ["seqil", "ilprox", "ipc"])
@pytest.mark.parametrize("batch", [1, 3, 20])
def test_fused_sgd_step_equals_compute_then_sgd(name, batch):
    """The scheduled variants' fused SGD step (update written straight into the weights) against
    compute() followed by the optimiser, float64. (iPC's fused step below BLAS_MIN_BATCH also runs
    its learn-then-predict of W_1 as one pass.)"""
    reference = _network("dense")
    fused = _network("dense")
    rng = np.random.default_rng(batch)
    x, y = rng.normal(size=(batch, 6)), np.eye(3)[rng.integers(0, 3, batch)]
    variant = _variant(name)
    step = variant.compute(reference, x, y)
    ns.optim.SGD(lr=0.1).step(reference, step.grads)
    trainer = ns.Trainer(fused, _variant(name), ns.optim.SGD(lr=0.1))
    fused_step = trainer.step(x, y)
    assert fused_step.grads is None  # the fused path ran
    assert _relative(fused.params, reference.params) < 1e-12
    assert fused_step.loss == pytest.approx(step.loss, rel=1e-12)


@pytest.mark.parametrize("batch", [1, 3])
def test_learn_then_predict_in_one_pass_equals_the_two_ops(batch):
    """iPC's learn of W_1 next to its prediction runs as one pass over W_1 in the fused SGD step
    when W_1 is large (kernels.schedule.FUSE_MIN_WEIGHTS); it must equal compute() then SGD, on the
    numba loop (the two ops apart) and on the NumPy reference backend."""
    from neurosim.kernels.schedule import FUSE_MIN_WEIGHTS

    sizes = [300, 256, 4, 3]
    assert sizes[0] * sizes[1] >= FUSE_MIN_WEIGHTS and sizes[1] * sizes[2] < FUSE_MIN_WEIGHTS
    rng = np.random.default_rng(batch)
    x, y = rng.normal(size=(batch, sizes[0])), np.eye(3)[rng.integers(0, 3, batch)]
    fused = ns.mlp(sizes, seed=3, dtype="float64")
    fused_step = ns.Trainer(fused, ns.variant("ipc", T=4, lr_weights=0.05), ns.optim.SGD(lr=0.1)).step(x, y)
    assert fused_step.grads is None
    assert not np.array_equal(fused.params, ns.mlp(sizes, seed=3, dtype="float64").params)
    for backend in ("numba", "numpy"):
        reference = ns.mlp(sizes, seed=3, dtype="float64")
        with ns.backends.use(backend):
            step = ns.variant("ipc", T=4, lr_weights=0.05).compute(reference, x, y)
        ns.optim.SGD(lr=0.1).step(reference, step.grads)
        assert _relative(fused.params, reference.params) < 1e-12, backend


@pytest.mark.parametrize("name", ["seqil", "ilprox", "ipc"])
def test_fused_sgd_step_that_would_overflow_changes_nothing(name):
    net = _network("dense")
    x, y = _batch("dense")
    y = y * 1e6  # big errors, so lr * update overflows float64
    before = net.params.copy()
    trainer = ns.Trainer(net, _variant(name, output="mse") if name != "ipc" else _variant(name),
                         ns.optim.SGD(lr=1e306))
    with pytest.raises(ns.DivergenceError, match="non-finite"):
        trainer.step(x, y)
    assert np.array_equal(net.params, before)


@pytest.mark.parametrize("name", ns.available())
def test_variants_keep_no_step_state_and_fixed_hyper_parameters(name):
    """Hyper-parameters are fixed at construction; a step's state lives in its StepState, so two
    networks stepped in turn by one variant object give what two fresh variants give."""
    variant = _variant(name)
    with pytest.raises(TypeError):
        variant.hyper["T"] = 3
    nets = [_network("dense", seed=s) for s in (1, 2)]
    x, y = _batch("dense")
    interleaved = [variant.compute(net, x, y).grads for net in nets]
    fresh = [_variant(name).compute(_network("dense", seed=s), x, y).grads for s in (1, 2)]
    for a, b in zip(interleaved, fresh):
        np.testing.assert_array_equal(a, b)
    before = {key: value for key, value in vars(variant).items() if not key.startswith("_schedules")}
    variant.compute(nets[0], x, y)
    after = {key: value for key, value in vars(variant).items() if not key.startswith("_schedules")}
    assert set(after) == set(before)  # no per-step attributes appear on the variant


SCHEDULED = [name for name in ns.available()
             if isinstance(ns.variant(name), ns.variants.scheduled.Scheduled)]


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
       batch=st.sampled_from([1, 3, 17]),
       activation=st.sampled_from(["tanh", "sigmoid", "relu", "leaky_relu", "leaky_relu_0.1", "linear"]),
       name=st.sampled_from(SCHEDULED), seed=st.integers(0, 2**16))
def test_schedule_loop_equals_numpy_reference_on_random_circuits(sizes, batch, activation, name, seed):
    """The compiled loop against the NumPy reference on random depths, widths, batches (both sides
    of BLAS_MIN_BATCH) and activations, for every variant that is a schedule."""
    if ns.variant(name).hyper.get("output") == "ce":
        sizes = sizes[:-1] + [max(sizes[-1], 2)]  # a softmax cross-entropy target needs 2 outputs
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))
    steps = []
    for backend in ("numba", "numpy"):
        net = ns.mlp(sizes, activation=activation, seed=seed)
        with ns.backends.use(backend):
            steps.append(_variant(name).compute(net, x, y))
    fast, reference = steps
    assert _relative(fast.grads, reference.grads) < TOLERANCE
    if fast.energies is not None:
        assert _relative(fast.energies, reference.energies) < TOLERANCE


@pytest.mark.parametrize("name", SCHEDULED)
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_one_call_and_tick_by_tick_count_the_same_events(name, kind):
    """compute (one call, counted from the schedule's merged plan) and the Simulator (tick by tick)
    record the same events; Z-IL's compute runs its wavefront, so its circuit is compared."""
    net = _with_depth(_network(kind), kind)
    x, y = _batch(kind)
    variant = _variant(name)
    with ns.counting.count() as fused:
        variant.compute_with(net, x, y, variant.schedule(net))
    with ns.counting.count() as stepped:
        ns.Simulator(net, variant).run(x, y)
    assert fused.events == stepped.events
    assert all(event.source and event.target for event in fused.events)


def test_a_bad_schedule_is_refused_naming_the_op_before_any_kernel():
    from neurosim.circuit.schedule import Op, Run, Schedule
    net = _network("dense")
    ws = net.workspace(2)
    y = np.zeros((2, 3))
    with pytest.raises(ValueError, match="tick 0: feedback on layer 1; allowed layers 2..3"):
        Run(Schedule().new_tick().feedback(1), net, ws, y)
    with pytest.raises(ValueError, match="tick 1: relax on layer 2 has a non-finite argument"):
        Run(Schedule().new_tick().new_tick().relax(2, float("nan")), net, ws, y)
    with pytest.raises(ValueError, match="unknown op 'teleport'"):
        Run(Schedule([[Op("teleport", 1)]]), net, ws, y)
    with pytest.raises(ValueError, match="output must be one of mse, ce"):
        Schedule(output="hinge")
    with pytest.raises(ValueError, match="blend must be one of mix, nlms"):
        Schedule().soft_target("ce", "average", 0.5)
