"""Z-IL's training path is an event-driven wavefront; the Simulator still runs the full circuit.

Oracles: BP (``variant("bp")``) and the full Z-IL circuit, both tick by tick (``ns.Simulator``) and
fused (IL's ``compute`` with Z-IL's schedule, gamma = 1 and L - 1 ticks). The wavefront must give the
same gradients (float64, relative error < 1e-10; bit for bit against the full circuit on the conv/RNN
path, whose arithmetic is the same per layer), count exactly BP's MACs and critical path, do matrix
work only on the layer at the error front, and report divergence by tick and layer as the full
circuit does.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim import complexity
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten
from neurosim.variants.il import IL
from neurosim.variants.zil import ZIL
from zil_conditions import BROKEN, BROKEN_IDS

ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "leaky_relu")
TOL = 1e-10


def flat(grads) -> np.ndarray:
    """``[(dW, db), ...]`` of a dense or conv network as one vector in ``net.params`` order."""
    return np.concatenate([np.concatenate([np.ravel(w), np.ravel(b)]) for w, b in grads])


def assert_same_gradients(got, want, net, tol=TOL):
    """Flat gradients: the whole vector and each parameter group within ``tol`` of ``want``'s scale."""
    scale = max(float(np.max(np.abs(want))), 1e-300)
    assert np.max(np.abs(got - want)) <= tol * scale
    for start, stop in net.param_groups():
        local = float(np.max(np.abs(want[start:stop]))) if stop > start else 0.0
        assert np.max(np.abs(got[start:stop] - want[start:stop]), initial=0.0) <= tol * local + 1e-15 * scale


def full_circuit_fused(net, x, y) -> np.ndarray:
    """IL's fused kernel under Z-IL's schedule: the full circuit, every population every tick."""
    return IL.compute(ns.variant("zil"), net, x, y).grads


def simulator_grads(net, x, y) -> np.ndarray:
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y)
    grads = np.zeros_like(net.params)
    views = net.grad_views(grads)
    for key, value in (trace.grads.items() if isinstance(trace.grads, dict) else enumerate(trace.grads)):
        if isinstance(views, dict):
            views[key][...] = value
        else:
            views[key][0][...], views[key][1][...] = value
    return grads


@st.composite
def mlps(draw, max_batch=40):
    depth = draw(st.integers(1, 6))
    sizes = [draw(st.integers(1, 12)) for _ in range(depth + 1)]
    activation = draw(st.sampled_from(ACTIVATIONS))
    net = ns.mlp(sizes, activation=activation, seed=draw(st.integers(0, 10_000)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    batch = draw(st.integers(1, max_batch))  # both sides of dense.BLAS_MIN_BATCH
    return net, rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))


@st.composite
def cnns(draw):
    channels, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    layers = [Conv2d(1, channels, 3, stride=stride, padding=padding)]
    side = (8 + 2 * padding - 3) // stride + 1
    if draw(st.booleans()) and side >= 2:
        layers.append(AvgPool2d(2))
        side //= 2
    if draw(st.booleans()):
        layers.append(Conv2d(channels, 2, 1))
        channels = 2
    n_out = draw(st.integers(1, 4))
    layers += [Flatten(), Dense(channels * side * side, n_out)]
    activation = draw(st.sampled_from(("tanh", "sigmoid", "relu", "leaky_relu")))
    net = ns.Network(layers, activation=activation, input_shape=(1, 8, 8), seed=draw(st.integers(0, 1000)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    batch = draw(st.integers(1, 4))
    return net, rng.normal(size=(batch, 1, 8, 8)), rng.normal(size=(batch, n_out))


@st.composite
def rnns(draw):
    n_in, n_hidden, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    activation = draw(st.sampled_from(("tanh", "sigmoid", "leaky_relu")))
    net = ns.rnn(n_in, n_hidden, n_out, activation=activation, seed=draw(st.integers(0, 1000)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    batch, steps = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    return net, rng.normal(size=(batch, steps, n_in)), rng.normal(size=(batch, n_out))


# --------------------------------------------------------------------------- same gradients
@settings(max_examples=60, deadline=None)
@given(mlps())
def test_wavefront_equals_bp_and_the_full_circuit_on_random_mlps(case):
    net, x, y = case
    zil = ns.variant("zil")
    assert zil.wavefront_applies(net)
    step = zil.compute(net, x, y)
    bp = ns.variant("bp").compute(net, x, y)
    assert_same_gradients(step.grads, bp.grads, net)
    assert_same_gradients(step.grads, full_circuit_fused(net, x, y), net)
    assert_same_gradients(step.grads, simulator_grads(net, x, y), net)
    assert step.loss == pytest.approx(bp.loss, rel=1e-14, abs=1e-300)
    np.testing.assert_array_equal(step.output, bp.output)
    assert step.energies is None  # the wavefront does not simulate the retired layers


@settings(max_examples=25, deadline=None)
@given(cnns())
def test_wavefront_equals_bp_and_bit_for_bit_the_full_circuit_on_random_cnns(case):
    net, x, y = case
    got = ns.variant("zil").compute(net, x, y).grads
    assert_same_gradients(got, ns.variant("bp").compute(net, x, y).grads, net)
    np.testing.assert_array_equal(got, full_circuit_fused(net, x, y))
    np.testing.assert_array_equal(got, simulator_grads(net, x, y))


@settings(max_examples=25, deadline=None)
@given(rnns())
def test_wavefront_equals_bp_and_bit_for_bit_the_full_circuit_on_random_rnns(case):
    net, x, y = case
    got = ns.variant("zil").compute(net, x, y).grads
    assert ns.variant("zil").n_ticks(net) == x.shape[1]
    assert_same_gradients(got, ns.variant("bp").compute(net, x, y).grads, net)
    np.testing.assert_array_equal(got, full_circuit_fused(net, x, y))
    np.testing.assert_array_equal(got, simulator_grads(net, x, y))


def test_wavefront_leaves_the_circuit_state_of_its_ticks():
    """After compute, layer l holds x_l(L-l) and e_l(L-l) of the full circuit (its last change in
    the wavefront), and layers below the front never moved before their tick."""
    net = ns.mlp([5, 7, 6, 6, 3], activation="tanh", seed=3)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    ns.variant("zil").compute(net, x, y)
    ws = net.workspace(4)
    L = net.n_layers
    values = [ws.layer("values", l).copy() for l in range(L + 1)]
    errors = [ws.layer("errors", l).copy() for l in range(L + 1)]
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y, record=("errors", "values"))  # same buffers
    for l in range(1, L):
        np.testing.assert_allclose(values[l], trace.values[l][L - l], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(errors[l], trace.errors[l][L - l], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(values[L], y)


# --------------------------------------------------------------------------- Simulator: full circuit
def test_simulator_still_runs_the_full_circuit():
    """Retired layers keep moving in the Simulator (the traces show all of the dynamics): the output
    error changes at tick 1 because mu_L is re-predicted from the moved x_{L-1}."""
    net = ns.mlp([4, 6, 6, 2], activation="tanh", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y, record=("errors",))
    L = net.n_layers
    assert trace.ticks == L - 1
    assert not np.array_equal(trace.errors[L][1], trace.errors[L][0])
    with ns.counting.count() as full:
        ns.Simulator(net, ns.variant("zil")).run(x, y)
    il_form = complexity.analytic(net, ("il", {"T": L - 1, "gamma": 1.0}), batch_size=3)
    assert (full.macs, full.critical_path) == (il_form["macs"], il_form["critical_path"])


# --------------------------------------------------------------------------- counts
@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=8), batch=st.integers(1, 20))
def test_wavefront_counts_bp_work_plus_elementwise_value_updates(sizes, batch):
    net = ns.mlp(sizes, seed=0)
    zil, bp = complexity.measure(net, "zil", batch), complexity.measure(net, "bp", batch)
    assert (zil.macs, zil.messages, zil.critical_path) == (bp.macs, bp.messages, bp.critical_path)
    assert zil.critical_path == 2 * net.n_layers
    hidden = sum(sizes[1:-1])
    assert zil.ops == bp.ops + 2 * batch * hidden  # value update (3) + error (1) vs BP's delta (2)
    assert zil.ticks == net.n_layers - 1 and zil.all_layers_updated
    closed = complexity.analytic(net, "zil", batch)
    assert (zil.macs, zil.ticks, zil.critical_path) == (closed["macs"], closed["ticks"],
                                                         closed["critical_path"])


def test_only_the_layer_on_the_error_front_works():
    """Activity grid: at tick t >= 1 only layer L - t does matrix work (feedback, Hebbian)."""
    net = ns.mlp([6, 8, 8, 8, 8, 3], seed=2)
    report = complexity.measure(net, "zil", batch_size=2)
    grid = report.activity()
    L = net.n_layers
    assert np.all(grid[:, 0] > 0)  # tick 0: forward pass everywhere
    for tick in range(1, L):
        working = [l for l in range(1, L + 1) if grid[l - 1, tick] > 0]
        assert working == [L - tick], (tick, working)
    kernels = report.counter.by_kernel()
    assert "prediction" not in kernels  # no population is ever re-predicted


def test_conv_and_rnn_counts_equal_bp_work():
    rng = np.random.default_rng(0)
    cnn = ns.Network([Conv2d(1, 3, 3, padding=1), AvgPool2d(2), Conv2d(3, 2, 1), Flatten(), Dense(32, 4)],
                     activation="tanh", input_shape=(1, 8, 8), seed=0)
    rnn = ns.rnn(3, 5, 2, seed=0)
    for net, x in ((cnn, rng.normal(size=(2, 1, 8, 8))), (rnn, rng.normal(size=(2, 6, 3)))):
        net.check_input(x)
        zil = complexity.measure(net, "zil", x=x)
        bp = complexity.measure(net, "bp", x=x)
        assert (zil.macs, zil.critical_path) == (bp.macs, bp.critical_path) == (
            complexity.analytic(net, "zil", 2)["macs"], 2 * net.n_layers)


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("batch", [2, 20])
def test_divergence_names_the_same_tick_and_layer_as_the_full_circuit(batch):
    """The forward pass and the loss are finite, the error front overflows on its way down: layer 3
    is tiny and W_4 huge, so e_4 W_4 ~ 1e160 and e_3's squared sum is not finite at tick 1."""
    net = ns.mlp([3, 4, 4, 4, 2], activation="linear", seed=1)
    net.weights[2][...] *= 1e-160
    net.biases[2][...] *= 1e-160
    net.weights[3][...] *= 1e160
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(batch, 3)), rng.normal(size=(batch, 2))
    assert np.isfinite(net.loss(x, y))
    with pytest.raises(ns.DivergenceError) as wave:
        ns.variant("zil").gradients(net, x, y)
    with pytest.raises(ns.DivergenceError) as full:
        ns.Simulator(net, ns.variant("zil")).run(x, y)
    assert (wave.value.tick, wave.value.layer) == (full.value.tick, full.value.layer) == (1, 3)
    with ns.counting.count() as counter, pytest.raises(ns.DivergenceError):
        ns.variant("zil").compute(net, x, y)
    assert [(e.kernel, e.layer) for e in counter.events if e.tick >= 1] == [("value_update", 3), ("error", 3)]
    message = str(wave.value)
    assert f"tick {wave.value.tick}" in message and f"layer {wave.value.layer}" in message


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the Simulator's NumPy path
def test_divergence_on_an_rnn_names_the_same_tick_and_layer_as_the_full_circuit():
    """The NumPy backend (conv/RNN): tiny recurrent state, huge readout, so e_L W_hy ~ 1e160 and the
    top hidden layer's squared error overflows at tick 1; the step stops there, and its counts with
    it, on every backend."""
    net = ns.rnn(2, 3, 2, activation="tanh", seed=0)
    for name in ("W_xh", "W_hh", "b_h"):
        getattr(net, name)[...] *= 1e-170
    net.W_hy[...] *= 1e160
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 2))
    assert np.isfinite(net.loss(x, y))
    with ns.counting.count() as counter:
        with pytest.raises(ns.DivergenceError) as wave:
            ns.variant("zil").gradients(net, x, y)
    with pytest.raises(ns.DivergenceError) as full:
        ns.Simulator(net, ns.variant("zil")).run(x, y)
    L = net.n_layers
    assert (wave.value.tick, wave.value.layer) == (full.value.tick, full.value.layer) == (1, L - 1)
    assert max(e.tick for e in counter.events) == 1


# --------------------------------------------------------------------------- other algorithms
class RenamedZIL(ZIL):
    name = "zil_wavefront_renamed_test"


@pytest.mark.parametrize("broken", BROKEN, ids=BROKEN_IDS)
def test_subclasses_that_break_a_condition_run_the_full_circuit(broken):
    net = ns.mlp([4, 6, 6, 3], activation="tanh", seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    variant = broken()
    assert not variant.wavefront_applies(net)
    got = variant.compute(net, x, y)
    assert got.energies is not None
    trace = ns.Simulator(net, variant).run(x, y)
    np.testing.assert_allclose(flat(trace.grads), got.grads, rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(got.grads - ns.variant("bp").compute(net, x, y).grads)) > 1e-6


def test_a_subclass_that_keeps_the_conditions_keeps_the_wavefront():
    net = ns.mlp([4, 6, 3], seed=0)
    assert RenamedZIL().wavefront_applies(net)
    x, y = np.ones((2, 4)), np.zeros((2, 3))
    np.testing.assert_array_equal(RenamedZIL().compute(net, x, y).grads,
                                  ns.variant("zil").compute(net, x, y).grads)


def test_training_with_the_wavefront_is_training_with_bp():
    net_bp = ns.mlp([8, 10, 10, 3], activation="tanh", seed=4)
    net_zil = net_bp.copy()
    rng = np.random.default_rng(3)
    bp = ns.Trainer(net_bp, ns.variant("bp"), ns.optim.SGD(lr=0.1))
    zil = ns.Trainer(net_zil, ns.variant("zil"), ns.optim.SGD(lr=0.1))
    for _ in range(20):
        x, y = rng.normal(size=(6, 8)), rng.normal(size=(6, 3))
        assert zil.step(x, y).loss == pytest.approx(bp.step(x, y).loss, rel=1e-10)
    np.testing.assert_allclose(net_zil.params, net_bp.params, rtol=1e-10, atol=1e-12)
