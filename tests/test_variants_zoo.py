"""The PC variant zoo (FPA, SeqIL, IL-prox, implicit SGD, iPC, COPI): oracles and conformance.

Sorted by oracle: closed forms (single-layer cases, fixed points), second implementations (BP,
NumPy references of the numba kernels, implicit SGD's solver), papers' claims (SeqIL vs IL,
IL-prox vs implicit SGD, COPI decorrelation). The last section runs one conformance suite over every
registered variant.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim import counting
from neurosim.kernels import reference
from neurosim.variants._common import cosine, layer_views, loss_and_grads, softmax

ZOO = ("fpa", "seqil", "ilprox", "ilprox_fast", "implicit_sgd", "ipc", "copi")


def _batch(net, batch, seed=0, target_noise=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, net.n_inputs))
    if target_noise is None:
        y = rng.normal(size=(batch, net.n_outputs))
    else:
        y = net.forward(x) + target_noise * rng.normal(size=(batch, net.n_outputs))
    return x, y


def _layer(net, flat, layer):
    return flat[net.w_off[layer]:net.b_off[layer] + net.sizes[layer]]


def _flat(pairs):
    return np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in pairs])


# -- FPA: equal to BP at gamma = 1 -------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 5), width=st.integers(1, 9), batch=st.integers(1, 20),
       activation=st.sampled_from(["tanh", "sigmoid", "relu", "leaky_relu", "linear"]),
       seed=st.integers(0, 2**16))
def test_fpa_equals_bp_float64(depth, width, batch, activation, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, 9))] + [width] * (depth - 1) + [int(rng.integers(1, 6))]
    net = ns.mlp(sizes, activation=activation, seed=seed)
    x, y = _batch(net, batch, seed)
    bp = ns.variant("bp").compute(net, x, y).grads
    fused = ns.variant("fpa").compute(net, x, y).grads
    trace = ns.Simulator(net, ns.variant("fpa")).run(x, y)
    scale = max(np.linalg.norm(bp), 1e-300)
    assert np.linalg.norm(fused - bp) <= 1e-10 * scale
    assert np.linalg.norm(_flat(trace.grads) - bp) <= 1e-10 * scale
    assert trace.ticks == depth


def test_fpa_needs_L_minus_1_ticks_and_small_gamma_converges():
    net = ns.mlp([6, 7, 7, 7, 3], seed=3)
    x, y = _batch(net, 4, 3)
    bp = ns.variant("bp").compute(net, x, y).grads
    short = ns.variant("fpa", T=net.n_layers - 2).compute(net, x, y).grads
    assert np.allclose(_layer(net, short, 1), 0.0)          # the error has not reached layer 1
    exact = ns.variant("fpa", T=net.n_layers - 1).compute(net, x, y).grads
    assert np.allclose(exact, bp, rtol=1e-10, atol=1e-13)
    slow = ns.variant("fpa", T=400, gamma=0.2).compute(net, x, y).grads
    assert np.allclose(slow, bp, rtol=1e-7, atol=1e-10)     # same fixed point, reached geometrically


@pytest.mark.parametrize("batch", [3, 20])                  # loops below BLAS_MIN_BATCH, GEMMs above
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fixed_prediction_kernels_match_numpy_reference(batch, dtype):
    net = ns.mlp([5, 8, 6, 4], activation="tanh", seed=1, dtype=dtype)
    x, y = _batch(net, batch, 1)
    variant = ns.variant("fpa", T=6, gamma=0.4)
    step = variant.compute(net, x, y)
    # reference: same tick-0 state, built with the NumPy kernels
    weights = [w.astype(np.float64) for w in net.weights]
    biases = [b.astype(np.float64) for b in net.biases]
    state = reference.feedforward(weights, biases, "tanh", x.astype(np.float64))
    gains = reference.activation_gains("tanh", state)
    state.values[-1] = y.copy()
    state.errors[-1] = y - state.preds[-1]
    update = np.full(net.n_layers + 1, 6)
    grads, energies, bad = reference.relax_fixed_prediction(weights, 0.4, 6, state, gains, update,
                                                            -1.0 / batch)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert bad == (-1, -1)
    assert np.allclose(step.energies, energies, rtol=tol, atol=tol)
    assert np.allclose(step.grads, _flat(grads), rtol=tol, atol=tol)
    # the simulator's trajectory, tick by tick, equals the reference's
    trace = ns.Simulator(net, variant).run(x, y, record=("energy", "values", "errors"))
    state = reference.feedforward(weights, biases, "tanh", x.astype(np.float64))
    state.values[-1] = y.copy()
    state.errors[-1] = y - state.preds[-1]
    for tick in range(1, 7):
        want = reference.relax_tick_fixed_prediction(weights, 0.4, state, gains)
        assert np.isclose(trace.energy[tick], want, rtol=tol)
        for layer in range(1, net.n_layers + 1):
            assert np.allclose(trace.values[layer][tick], state.values[layer], rtol=tol, atol=tol)
            assert np.allclose(trace.errors[layer][tick], state.errors[layer], rtol=tol, atol=tol)


def test_fpa_counts_every_tick():
    net = ns.mlp([4, 5, 5, 3], seed=0)
    x, y = _batch(net, 2)
    with counting.count() as fused:
        ns.variant("fpa").compute(net, x, y)
    with counting.count() as ticked:
        ns.Simulator(net, ns.variant("fpa")).run(x, y)
    assert fused.ticks == ticked.ticks == net.n_layers
    assert fused.macs == ticked.macs > 0
    assert fused.by_kernel()["hebbian"]["calls"] == net.n_layers


# -- SeqIL ---------------------------------------------------------------------------------------------
def test_seqil_closer_to_bp_than_parallel_il_at_three_ticks():
    """One top-down sweep reaches every layer; parallel IL with T=3 leaves layer 1 of 5 untouched."""
    for seed in range(3):
        net = ns.mlp([10, 20, 20, 20, 20, 5], seed=seed)
        x, y = _batch(net, 8, seed, target_noise=0.1)
        bp = ns.variant("bp").compute(net, x, y).grads
        seq = ns.variant("seqil", T=3, output="mse").compute(net, x, y).grads
        il = ns.variant("il", T=3).compute(net, x, y).grads
        seq_layers = [cosine(_layer(net, seq, l), _layer(net, bp, l)) for l in range(1, 6)]
        il_layers = [cosine(_layer(net, il, l), _layer(net, bp, l)) for l in range(1, 6)]
        assert min(seq_layers) > 0.95
        assert min(il_layers) < 0.5
        assert cosine(seq, bp) > cosine(il, bp)


@pytest.mark.parametrize("output", ["mse", "ce"])
def test_seqil_single_layer_is_scaled_loss_gradient(output):
    """Without hidden layers the update is (1 - pi) times the output loss gradient (closed form)."""
    net = ns.mlp([6, 4], seed=0)
    x, _ = _batch(net, 5)
    y = np.eye(4)[[0, 1, 2, 3, 1]]
    variant = ns.variant("seqil", output=output, beta=9.0)
    grads = variant.compute(net, x, y).grads
    weights, biases = layer_views(net, net.params)
    _, pairs = loss_and_grads(weights, biases, net.activation, output, x, y)
    assert np.allclose(grads, 0.9 * _flat(pairs), rtol=1e-12, atol=1e-14)


def test_seqil_ce_output_error_and_energy_at_tick_0():
    net = ns.mlp([5, 6, 3], seed=2)
    x, _ = _batch(net, 4)
    y = np.eye(3)[[0, 1, 2, 0]]
    trace = ns.Simulator(net, ns.variant("seqil", output="ce")).run(x, y, record=("errors", "values"))
    p = softmax(net.forward(x))
    pi = 1 / 101
    assert np.allclose(trace.values[2][0], (1 - pi) * y + pi * p)
    assert np.allclose(trace.errors[2][0], (1 - pi) * (y - p))
    assert np.all(np.diff(trace.energy) <= 1e-12)             # relaxation lowers the energy


# -- IL-prox and implicit SGD ------------------------------------------------------------------------
def test_implicit_sgd_contract_is_the_gradient_at_the_solution():
    net = ns.mlp([5, 7, 3], seed=4)
    x, y = _batch(net, 6, 4)
    variant = ns.variant("implicit_sgd", alpha=0.5, tol=1e-10, max_iter=20000)
    before = net.params.copy()
    grads = variant.compute(net, x, y).grads
    assert np.array_equal(net.params, before)                # the solve runs on a copy
    solution = net.params - 0.5 * grads
    weights, biases = layer_views(net, solution)
    _, pairs = loss_and_grads(weights, biases, net.activation, "mse", x, y)
    assert np.allclose(grads, _flat(pairs), rtol=1e-7, atol=1e-9)
    assert variant.info["residual"] <= 1e-10
    trained = net.copy()
    ns.optim.SGD(lr=0.5).step(trained, grads)                # SGD with lr = alpha lands on theta*
    assert np.allclose(trained.params, solution)


def test_implicit_sgd_linear_least_squares_closed_form():
    net = ns.mlp([4, 2], seed=0)
    x, y = _batch(net, 7)
    alpha = 2.0
    grads = ns.variant("implicit_sgd", alpha=alpha, tol=1e-9, max_iter=50000).compute(net, x, y).grads
    # theta = [W | b] per output row: (I/alpha + X^T X / B) theta = theta_b / alpha + X^T y / B
    xa = np.hstack([x, np.ones((7, 1))])
    hess = np.eye(5) / alpha + xa.T @ xa / 7
    theta_b = np.hstack([net.weights[0], net.biases[0][:, None]])
    theta = np.linalg.solve(hess, theta_b.T / alpha + xa.T @ y / 7).T
    want = np.concatenate([((theta_b - theta) / alpha)[:, :4].ravel(), ((theta_b - theta) / alpha)[:, 4]])
    assert np.allclose(grads, want, rtol=1e-8, atol=1e-10)


def test_ilprox_single_linear_layer_equals_implicit_sgd_at_batch_1():
    net = ns.mlp([5, 3], seed=0)
    x, y = _batch(net, 1)
    for alpha in (0.1, 0.7, 5.0):
        prox = ns.variant("ilprox", alpha=alpha, output="mse", T=1).compute(net, x, y).grads
        isgd = ns.variant("implicit_sgd", alpha=alpha, tol=1e-10, max_iter=50000).compute(net, x, y).grads
        assert np.allclose(prox, alpha * isgd, rtol=1e-8, atol=1e-10)


def test_ilprox_approaches_implicit_sgd_as_ticks_grow():
    net = ns.mlp([6, 8, 8, 4], seed=0)
    x = np.random.default_rng(0).normal(size=(1, 6))
    y = np.eye(4)[[1]]
    isgd = ns.variant("implicit_sgd", alpha=0.1, output="ce").compute(net, x, y).grads
    full, per_layer = [], []
    for ticks in (5, 25, 400):
        prox = ns.variant("ilprox", T=ticks, gamma=0.1, alpha=0.1).compute(net, x, y).grads
        full.append(cosine(prox, isgd))
        per_layer.append(min(cosine(_layer(net, prox, l), _layer(net, isgd, l)) for l in range(1, 4)))
    assert full[0] < full[1] < full[2]
    assert per_layer[-1] > 0.99                 # every layer's update points where implicit SGD's does
    assert full[-1] > 0.95                      # NLMS scales layers by their own input norms


# -- iPC -------------------------------------------------------------------------------------------------
def test_ipc_sgd_with_lr_weights_reproduces_the_incremental_run():
    net = ns.mlp([6, 8, 8, 4], seed=0)
    x, y = _batch(net, 3)
    variant = ns.variant("ipc", T=10, lr_weights=0.05)
    before = net.params.copy()
    step = variant.compute(net, x, y)
    assert np.array_equal(net.params, before)
    trained = net.copy()
    ns.optim.SGD(lr=0.05).step(trained, step.grads)
    assert np.allclose(trained.params, step.state.extra["run"].params, rtol=1e-12, atol=1e-14)
    assert np.all(np.diff(step.energies) < 0)


def test_ipc_first_tick_is_the_output_layer_gradient():
    net = ns.mlp([6, 8, 4], seed=1)
    x, y = _batch(net, 5, 1)
    grads = ns.variant("ipc", T=1).compute(net, x, y).grads
    bp = ns.variant("bp").compute(net, x, y).grads
    assert np.allclose(_layer(net, grads, 2), _layer(net, bp, 2))
    assert np.allclose(_layer(net, grads, 1), 0.0)


# -- COPI ------------------------------------------------------------------------------------------------
def _offdiag_corr(x):
    c = np.corrcoef(x.T)
    return float(np.abs(c[~np.eye(len(c), dtype=bool)]).mean())


def test_copi_decorrelation_reduces_input_correlation_tenfold():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    net = ns.mlp([8, 4], seed=0)
    variant = ns.variant("copi", eta=0.0, eta_r=0.05)
    for _ in range(800):
        xb = rng.normal(size=(128, 8)) @ mixing.T * 0.3
        variant.compute(net, xb, np.zeros((128, 4)))
    test = rng.normal(size=(4000, 8)) @ mixing.T * 0.3
    R = variant.state(net).decorrelation[0]
    assert _offdiag_corr(test) >= 10 * _offdiag_corr(test @ R.T)
    assert variant.state(net).steps == 800


def test_copi_weights_reach_the_per_synapse_regression_fixed_point():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 5))
    teacher = rng.normal(size=(3, 5))
    y = x @ teacher.T
    net = ns.mlp([5, 3], seed=0)
    variant = ns.variant("copi", eta=0.2, eta_r=0.0)
    for _ in range(300):
        ns.optim.SGD(lr=1.0).step(net, variant.compute(net, x, y).grads)
    W = variant.synaptic_weights(net)[0]
    a = x @ W.T                                     # decorrelated input = x (R = I, eta_r = 0)
    delta = y - net.forward(x)
    fixed_point = ((a + delta).T @ x / len(x)) / np.mean(x * x, axis=0)[None, :]
    assert np.allclose(W, fixed_point, rtol=1e-6, atol=1e-8)


def test_copi_single_step_formula_and_state_handling():
    net = ns.mlp([4, 5, 3], seed=2)
    x, y = _batch(net, 6, 2)
    variant = ns.variant("copi", eta=0.1, eta_r=0.01)
    looked = _flat(variant.gradients(net, x, y))
    assert variant.state(net).steps == 0                       # gradients() does not commit R
    assert np.allclose(variant.state(net).decorrelation[0], np.eye(4))
    step = variant.compute(net, x, y)
    assert np.allclose(step.grads, looked)
    assert variant.state(net).steps == 1
    # output layer, R = I before the step: M' = (W + eta dW)(I - eta_r C)
    h1 = np.tanh(x @ net.weights[0].T + net.biases[0])
    delta = y - net.forward(x)
    a = h1 @ net.weights[1].T
    dW = (a + delta).T @ h1 / 6 - net.weights[1] * np.mean(h1 * h1, axis=0)[None, :]
    second = h1.T @ h1 / 6
    R_new = np.eye(5) - 0.01 * (second - np.diag(np.diag(second)))
    want = net.weights[1] - (net.weights[1] + 0.1 * dW) @ R_new
    got = step.grads[net.w_off[2]:net.b_off[2]].reshape(3, 5)
    assert np.allclose(got, want)
    assert np.allclose(variant.state(net).decorrelation[1], R_new)
    fa = ns.variant("copi", credit="fa")
    assert np.all(np.isfinite(fa.compute(net, x, y).grads))
    variant.reset(net)
    assert variant.state(net).steps == 0


# -- feedback pathways (IL family) ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["seqil", "ilprox", "ilprox_fast", "ipc"])
def test_random_feedback_is_deterministic_and_changes_the_update(name):
    net = ns.mlp([5, 6, 6, 3], seed=0)
    x, y = _batch(net, 4)
    sym = ns.variant(name).compute(net, x, y).grads
    rnd = ns.variant(name, feedback="random").compute(net, x, y).grads
    assert not np.allclose(_layer(net, rnd, 1), _layer(net, sym, 1))
    assert cosine(_layer(net, rnd, 3), _layer(net, sym, 3)) > 0.5      # the output error is the same
    same_seed = ns.variant(name, feedback="random").compute(net, x, y).grads
    assert np.array_equal(rnd, same_seed)


def test_kolen_pollack_shrinks_w_minus_b_with_matching_sgd():
    net = ns.mlp([5, 6, 6, 3], seed=0)
    x, y = _batch(net, 4)
    variant = ns.variant("seqil", feedback="learned", feedback_lr=0.1, feedback_decay=0.5)
    gaps = [w - b for w, b in zip(net.weights, variant.feedback_matrices(net))]
    looked = variant.gradients(net, x, y)                     # gradients() does not move B
    for w, b, gap in zip(net.weights, variant.feedback_matrices(net), gaps):
        assert np.array_equal(w - b, gap)
    ns.optim.SGD(lr=0.1).step(net, variant.compute(net, x, y).grads)
    for w, b, gap in zip(net.weights, variant.feedback_matrices(net), gaps):
        assert np.allclose(w - b, (1 - 0.1 * 0.5) * gap)
    assert len(looked) == net.n_layers


def test_learned_feedback_aligns_better_than_random():
    data = ns.datasets.digits().subset(n_train=256, n_test=64)
    cos = {}
    for kind in ("random", "learned"):
        net = ns.mlp([64, 32, 32, 10], seed=0)
        variant = ns.variant("seqil", feedback=kind)
        ns.train(net, variant, data, ns.optim.SGD(lr=0.05), epochs=3, batch_size=16, progress=False)
        cos[kind] = cosine(variant.feedback_matrices(net)[2].ravel(), net.weights[2].ravel())
    assert cos["learned"] > cos["random"]


# -- bad input -----------------------------------------------------------------------------------------
BAD_HYPER = [
    ("fpa", {"T": 0}, "T"), ("fpa", {"gamma": -1.0}, "gamma"),
    ("seqil", {"T": 0}, "T"), ("seqil", {"gamma": 0.0}, "gamma"), ("seqil", {"beta": -1.0}, "beta"),
    ("seqil", {"output": "bce"}, "output"),
    ("ilprox", {"alpha": -0.5}, "alpha"), ("ilprox", {"gamma": -0.1}, "gamma"), ("ilprox", {"T": 0}, "T"),
    ("ilprox", {"eps": -1.0}, "eps"), ("ilprox_fast", {"alpha": 0.0}, "alpha"),
    ("implicit_sgd", {"alpha": -1.0}, "alpha"), ("implicit_sgd", {"tol": 0.0}, "tol"),
    ("implicit_sgd", {"max_iter": 0}, "max_iter"), ("implicit_sgd", {"output": "x"}, "output"),
    ("ipc", {"lr_weights": -0.01}, "lr_weights"), ("ipc", {"T": 0}, "T"), ("ipc", {"gamma": float("nan")}, "gamma"),
    ("seqil", {"feedback": "transposed"}, "feedback"), ("ipc", {"feedback_lr": -1.0}, "feedback_lr"),
    ("ilprox", {"feedback_decay": -1.0}, "feedback_decay"),
    ("copi", {"eta": -0.1}, "eta"), ("copi", {"eta_r": -1.0}, "eta_r"), ("copi", {"credit": "kp"}, "credit"),
]


@pytest.mark.parametrize("name,hyper,word", BAD_HYPER)
def test_bad_hyper_parameters_name_the_culprit(name, hyper, word):
    with pytest.raises(ValueError, match=word):
        ns.variant(name, **hyper)


# The other variants run on conv networks and RNNs (tests/test_conformance.py); these two follow
# papers that define their rules for dense layers only, and say so.
@pytest.mark.parametrize("name,why", [("implicit_sgd", "solver"), ("copi", "decorrelation")])
def test_dense_only_rules_reject_other_networks_and_say_why(name, why):
    net = ns.mlp([4, 5, 3])
    net.is_dense = False
    x, y = _batch(ns.mlp([4, 5, 3]), 2)
    with pytest.raises(ValueError, match=f"{name}.*dense.*{why}.*supported: dense"):
        ns.variant(name).compute(net, x, y)


@pytest.mark.parametrize("name", ["il", "seqil", "ilprox", "ipc"])
def test_non_symmetric_feedback_needs_a_dense_network(name):
    net = ns.mlp([4, 5, 3])
    net.is_dense = False
    x, y = _batch(ns.mlp([4, 5, 3]), 2)
    with pytest.raises(ValueError, match=f"{name}.*feedback='random'.*symmetric"):
        ns.variant(name, feedback="random").compute(net, x, y)


# -- conformance: every registered variant ------------------------------------------------------------
def _fresh(name):
    return ns.variant(name)


@pytest.mark.parametrize("name", ns.available())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conformance_shapes_dtype_determinism(name, dtype):
    net = ns.mlp([5, 7, 6, 3], seed=0, dtype=dtype)
    x, y = _batch(net, 4)
    before = net.params.copy()
    first = _fresh(name).gradients(net, x, y)
    second = _fresh(name).gradients(net, x, y)
    assert np.array_equal(net.params, before)                 # no variant changes the network
    assert len(first) == net.n_layers
    for (dW, db), (dW2, db2), W, b in zip(first, second, net.weights, net.biases):
        assert dW.shape == W.shape and db.shape == b.shape
        assert dW.dtype == np.dtype(dtype) and db.dtype == np.dtype(dtype)
        assert np.array_equal(dW, dW2) and np.array_equal(db, db2)
        assert np.all(np.isfinite(dW)) and np.all(np.isfinite(db))
    step = _fresh(name).compute(net, x, y)
    assert step.grads.shape == net.params.shape and step.output.shape == (4, 3)
    assert np.isfinite(step.loss)


@pytest.mark.parametrize("name", ns.available())
def test_conformance_simulator_trace(name):
    net = ns.mlp([5, 7, 6, 3], seed=0)
    x, y = _batch(net, 4)
    variant = _fresh(name)
    trace = ns.Simulator(net, variant).run(x, y, record=("energy", "errors", "values", "predictions"))
    ticks = variant.n_ticks(net)
    assert trace.energy.shape == (ticks + 1,)
    for name_ in ("errors", "values", "predictions"):
        series = getattr(trace, name_)
        assert len(series) == net.n_layers + 1
        for layer, arr in enumerate(series):
            assert arr.shape == (ticks + 1, 4, net.sizes[layer])
    assert len(trace.grads) == net.n_layers
    assert np.all(np.isfinite(trace.energy))


@pytest.mark.parametrize("name", ns.available())
def test_conformance_bad_input(name):
    net = ns.mlp([5, 7, 3], seed=0)
    x, y = _batch(net, 4)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError):
        _fresh(name).compute(net, bad, y)
    with pytest.raises(ValueError):
        _fresh(name).compute(net, x, y[:3])
    with pytest.raises(TypeError):
        ns.variant(name, no_such_hyper=1)


@pytest.fixture(scope="module")
def digits_small():
    return ns.datasets.digits().subset(n_train=256, n_test=128)


@pytest.mark.parametrize("name", ns.available())
def test_conformance_trains_on_digits(name, digits_small):
    net = ns.mlp([64, 128, 128, 10], seed=0)
    history = ns.train(net, _fresh(name), digits_small, ns.optim.SGD(lr=0.01), epochs=2,
                       batch_size=32, progress=False)
    assert len(history.test_accuracy) == 2
    assert np.all(np.isfinite(net.params))


# -- IL-prox vs implicit SGD: what holds for the whole update ---------------------------------------
def _nlms_norms(net, x):
    """n_l = mean_b ||phi(x_{l-1})||^2 + 1 on the feed-forward pass (IL-prox's NLMS normalisers)."""
    from neurosim.variants._common import forward

    weights, biases = layer_views(net, net.params)
    _, acts = forward(weights, biases, net.activation, x)
    return [float(np.sum(acts[l - 1] ** 2) / len(x)) + 1.0 for l in range(1, net.n_layers + 1)]


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_ilprox_whole_update_gap_is_the_per_layer_nlms_scaling(alpha):
    """IL-prox normalises each layer's update by its own presynaptic norm n_l (layer-wise proximal
    steps); implicit SGD takes one proximal step with a common alpha for all layers. Within a layer
    the directions agree (cosine > 0.99), but the layers' relative sizes differ by n_L / n_l, which
    caps the whole-update cosine below 0.99 on this net. Undoing that per-layer scaling (multiplying
    layer l by n_l / n_L) recovers a whole-update cosine above 0.998."""
    net = ns.mlp([6, 8, 8, 4], seed=0)
    x = np.random.default_rng(0).normal(size=(1, 6))
    y = np.eye(4)[[1]]
    isgd = ns.variant("implicit_sgd", alpha=alpha, output="ce", tol=1e-10,
                      max_iter=50000).compute(net, x, y).grads
    prox = ns.variant("ilprox", T=400, gamma=0.1, alpha=alpha).compute(net, x, y).grads
    per_layer = [cosine(_layer(net, prox, l), _layer(net, isgd, l)) for l in range(1, 4)]
    assert min(per_layer) > 0.99
    whole = cosine(prox, isgd)
    assert 0.95 < whole < 0.99
    norms = _nlms_norms(net, x)
    rescaled = prox.copy()
    for l in range(1, 4):
        rescaled[net.w_off[l]:net.b_off[l] + net.sizes[l]] *= norms[l - 1] / norms[-1]
    assert cosine(rescaled, isgd) > 0.998


def test_ilprox_small_alpha_layers_match_implicit_sgd_to_1e_3():
    """In the small-step regime every layer's IL-prox update points where implicit SGD's does
    (cosine > 0.999), with T large enough for the relaxation to settle."""
    net = ns.mlp([6, 8, 8, 4], seed=0)
    x = np.random.default_rng(0).normal(size=(1, 6))
    y = np.eye(4)[[1]]
    isgd = ns.variant("implicit_sgd", alpha=0.01, output="ce", tol=1e-10,
                      max_iter=50000).compute(net, x, y).grads
    cosines = []
    for ticks in (5, 25, 100):
        prox = ns.variant("ilprox", T=ticks, gamma=0.1, alpha=0.01).compute(net, x, y).grads
        cosines.append(min(cosine(_layer(net, prox, l), _layer(net, isgd, l)) for l in range(1, 4)))
    assert cosines[-1] > 0.999
    assert cosines[0] < cosines[-1]


# -- COPI: learning rates -----------------------------------------------------------------------------
def _train_digits(variant, opt, epochs):
    data = ns.datasets.digits()
    net = ns.mlp([64, 128, 128, 10], seed=0)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            history = ns.train(net, variant, data, opt, epochs=epochs, batch_size=32, progress=False)
    except ns.DivergenceError:
        return float("nan")
    return history.test_accuracy[-1] if np.all(np.isfinite(net.params)) else float("nan")


def test_copi_learns_at_a_credit_rate_where_bp_diverges():
    """With the regression and decorrelation at eta = eta_r = 0.1 and the credit term at
    eta * loss_gain = 1.0 (the paper's lr * loss_multiplier), COPI trains; BP with SGD at 1.0
    diverges on the same net and data."""
    copi = _train_digits(ns.variant("copi", eta=0.1, eta_r=0.1, loss_gain=10.0), ns.optim.SGD(lr=1.0), 3)
    bp = _train_digits(ns.variant("bp"), ns.optim.SGD(lr=1.0), 3)
    assert copi > 0.85
    assert not bp > 0.2                          # NaN (diverged) or chance


def test_copi_needs_decorrelation_as_fast_as_the_regression():
    """The rule's eta W C term grows W along C's top eigenvector; with eta_r < eta the
    decorrelation cannot remove it and training collapses, with eta_r = eta it trains."""
    fast = _train_digits(ns.variant("copi", eta=0.1, eta_r=0.1), ns.optim.SGD(lr=1.0), 2)
    slow = _train_digits(ns.variant("copi", eta=0.1, eta_r=0.01), ns.optim.SGD(lr=1.0), 2)
    assert fast > 0.85
    assert not slow > 0.2


def test_copi_loss_gain_scales_only_the_credit_term():
    """eta (<(a + g delta) x> - <x^2> W): the regression terms at eta, the credit at eta * g."""
    net = ns.mlp([4, 5, 3], seed=2)
    x, y = _batch(net, 6, 2)
    step = ns.variant("copi", eta=0.1, eta_r=0.0, loss_gain=7.0).compute(net, x, y).grads
    h1 = np.tanh(x @ net.weights[0].T + net.biases[0])
    delta = y - net.forward(x)
    a = h1 @ net.weights[1].T
    dW = (a + 7.0 * delta).T @ h1 / 6 - net.weights[1] * np.mean(h1 * h1, axis=0)[None, :]
    assert np.allclose(step[net.w_off[2]:net.b_off[2]].reshape(3, 5), -0.1 * dW)
    assert np.allclose(step[net.b_off[2]:net.b_off[2] + 3], -0.7 * delta.mean(axis=0))
    with pytest.raises(ValueError, match="loss_gain"):
        ns.variant("copi", loss_gain=-1.0)


def test_copi_divergence_commits_nothing_and_warns_nothing():
    """At batch 1 the default rates blow COPI up within a few steps on raw [0, 1) inputs: the step
    that would overflow raises, and weights, decorrelation and synaptic matrices stay as they were."""
    import warnings

    rng = np.random.default_rng(0)
    net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0, dtype="float32")
    variant = ns.variant("copi", eta=0.1, eta_r=0.1)
    trainer = ns.Trainer(net, variant, ns.optim.SGD(lr=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ns.DivergenceError, match="nothing was committed"):
            for step in range(50):
                before = net.params.copy()
                state = variant.state(net)
                saved = [[m.copy() for m in group or []] for group in (state.decorrelation, state.synaptic)]
                x = rng.random((1, 64)).astype("float32")
                trainer.step(x, np.eye(10, dtype="float32")[[step % 10]])
    assert np.array_equal(net.params, before)
    state = variant.state(net)
    for kept, now in zip(saved, (state.decorrelation, state.synaptic or [])):
        assert len(kept) == len(now) and all(np.array_equal(a, b) for a, b in zip(kept, now))


def _layer_cosines(grads, reference):
    out = []
    for (dw, db), (rw, rb) in zip(grads, reference):
        a, b = np.concatenate([dw.ravel(), db]), np.concatenate([rw.ravel(), rb])
        out.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300)))
    return out


@pytest.mark.parametrize("name, hyper", [("seqil", {"T": 3, "output": "mse"}), ("seqil", {"T": 3}), ("ilprox", {})],
                         ids=["seqil-mse", "seqil-ce", "ilprox-ce"])
def test_in_the_small_error_regime_every_layer_follows_bp_on_the_same_loss(name, hyper):
    """Alonso et al.'s regime: targets within 1% of the output. SeqIL with three sweeps (and IL-prox)
    give every layer of a depth-5 MLP an update within cosine 0.95 of BP's on the same output loss."""
    data = ns.datasets.digits()
    net = ns.mlp([64, 64, 64, 64, 64, 10], activation="tanh", seed=5)
    x = data.x_train[:32]
    output = net.forward(x)
    y = output * (1 + 0.01 * np.random.default_rng(0).uniform(-1, 1, size=output.shape))
    variant = ns.variant(name, **hyper)
    bp = ns.variant("bp", output=variant.hyper["output"])
    cosines = _layer_cosines(variant.gradients(net, x, y), bp.gradients(net, x, y))
    assert min(cosines) >= 0.95, cosines


def test_copi_with_the_papers_rates_trains_after_a_decorrelation_warm_up():
    """Ahmad et al.'s public code trains only R in its first epoch. With the paper's rates
    (eta = eta_r = 1e-3, loss gain 1000) COPI diverges at once without that warm-up and reaches 0.90
    on digits with about a thousand decorrelation-only steps."""
    data = ns.datasets.digits()
    paper = {"eta": 1e-3, "eta_r": 1e-3, "loss_gain": 1000.0}
    with pytest.raises(ns.DivergenceError):
        ns.train(ns.mlp([64, 128, 128, 10], seed=0), ns.variant("copi", **paper), data, ns.optim.SGD(lr=1.0),
                 epochs=2, progress=False)
    net = ns.mlp([64, 128, 128, 10], seed=0)
    variant = ns.variant("copi", warmup_steps=1000, **paper)
    history = ns.train(net, variant, data, ns.optim.SGD(lr=1.0), epochs=30, progress=False)
    warm_epochs = -(-1000 // -(-data.n_train // 32))
    assert max(history.test_accuracy[:warm_epochs - 1]) < 0.2  # only R learned: the readout is untrained
    assert max(history.test_accuracy[warm_epochs:]) >= 0.90
    with pytest.raises(ValueError, match="warmup_steps"):
        ns.variant("copi", warmup_steps=-1)


def test_copi_output_derivative_and_frozen_bias_follow_the_public_code():
    """``output_derivative``: delta_L = (y - a_L) * f'(a_L) (the public code's output perturbation);
    ``learn_bias=False``: the biases stay put (the public networks have none)."""
    net = ns.mlp([4, 5, 3], activation="leaky_relu_0.1", seed=2)
    x, y = _batch(net, 6, 2)
    plain = ns.variant("copi", eta=0.1, eta_r=0.01, loss_gain=3.0)
    public = ns.variant("copi", eta=0.1, eta_r=0.01, loss_gain=3.0, output_derivative=True, learn_bias=False)
    out = net.forward(x)
    slope = np.where(out > 0, 1.0, 0.1)
    assert np.any(slope < 1.0) and np.any(slope == 1.0)          # both branches of f' are exercised
    h1 = np.where(x @ net.weights[0].T + net.biases[0] > 0, 1.0, 0.1) * (x @ net.weights[0].T + net.biases[0])
    for variant, delta in ((plain, y - out), (public, (y - out) * slope)):
        grads = variant.gradients(net, x, y)
        a = h1 @ net.weights[1].T
        dW = (a + 3.0 * delta).T @ h1 / 6 - net.weights[1] * np.mean(h1 * h1, axis=0)[None, :]
        second = h1.T @ h1 / 6
        R_new = np.eye(5) - 0.01 * (second - np.diag(np.diag(second)))
        np.testing.assert_allclose(grads[1][0], net.weights[1] - (net.weights[1] + 0.1 * dW) @ R_new,
                                   rtol=1e-10, atol=1e-12)
        if variant is public:
            assert all(np.all(db == 0.0) for _, db in grads)
        else:
            np.testing.assert_allclose(grads[1][1], -0.1 * 3.0 * delta.mean(axis=0), rtol=1e-10)
    with pytest.raises(TypeError, match="output_derivative"):
        ns.variant("copi", output_derivative="yes")
    with pytest.raises(TypeError, match="learn_bias"):
        ns.variant("copi", learn_bias=1)


def test_copi_as_published_trains_on_digits_with_the_papers_network():
    """The paper's network (leaky-ReLU 0.1, output error through f', no biases, batch 50) with the
    paper's rates and a decorrelation warm-up reaches 0.90 on digits."""
    data = ns.datasets.digits()
    net = ns.mlp([64, 128, 128, 10], activation="leaky_relu_0.1", seed=0)
    for bias in net.biases:
        bias[...] = 0.0
    variant = ns.variant("copi", eta=1e-3, eta_r=1e-3, loss_gain=1000.0, warmup_steps=1000,
                         output_derivative=True, learn_bias=False)
    history = ns.train(net, variant, data, ns.optim.SGD(lr=1.0), epochs=45, batch_size=50, progress=False)
    assert max(history.test_accuracy) >= 0.90
    assert np.all(net.biases[0] == 0.0)


@pytest.mark.parametrize("name", ["copi", "ilprox", "ilprox_fast"])
def test_whole_step_variants_default_to_sgd_1_and_warn_about_other_optimisers(name):
    """copi and ilprox return their whole parameter change: ``SGD(lr=1.0)`` is their default, and
    any other optimiser is named in a warning (COPI with SGD 0.05 used to sit at chance silently)."""
    import warnings

    variant = ns.variant(name)
    assert variant.whole_step
    trainer = ns.Trainer(ns.mlp([4, 5, 3], seed=0), variant)
    assert type(trainer.optimizer) is ns.optim.SGD and trainer.optimizer.lr == 1.0
    for optimizer in (ns.optim.SGD(lr=0.05), ns.optim.Adam(lr=1e-3), ns.optim.SGD(lr=1.0, momentum=0.9)):
        with pytest.warns(UserWarning, match=f"variant '{name}' returns its whole parameter change"):
            ns.Trainer(ns.mlp([4, 5, 3], seed=0), variant, optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ns.Trainer(ns.mlp([4, 5, 3], seed=0), variant, ns.optim.SGD(lr=1.0))
        ns.Trainer(ns.mlp([4, 5, 3], seed=0), ns.variant("il"), ns.optim.Adam())
    assert ns.Trainer(ns.mlp([4, 5, 3], seed=0), ns.variant("il")).optimizer.lr == 0.05


def test_copi_trains_at_its_default_optimiser():
    data = ns.datasets.digits()
    history = ns.train(ns.mlp([64, 128, 128, 10], seed=0), ns.variant("copi"), data, epochs=3, progress=False)
    assert history.test_accuracy[-1] > 0.85
