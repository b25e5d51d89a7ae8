"""Gradients of every variant against independent oracles.

- BP against central finite differences of ``net.loss`` and against a plain-NumPy backprop written
  here (forward pass storing pre-activations, backward pass with deltas; no neurosim code).
- Z-IL against BP and finite differences (Song et al. 2020: exactly BP), its error neurons against
  BP's deltas tick by tick, and the zero-before-tick-(L-l) pattern of Zahid et al. 2023, Lemma 1.
- IL against BP in the small-output-error regime (Whittington & Bogacz 2017), and the divergence
  that appears when a Z-IL condition is broken.
- The fused ``variant.gradients`` against the tick-by-tick ``Simulator``; float32 against float64.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.kernels import dense
from neurosim.variants.il import IL

ACTS = ns.activations.names()
KINKED = ("relu", "leaky_relu", "leaky_relu_0.1")


# --------------------------------------------------------------------------- independent oracle
def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


NUMPY_ACTS = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1.0 / np.cosh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * _sigmoid(-z)),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "leaky_relu_0.1": (lambda z: np.where(z > 0, z, 0.1 * z), lambda z: np.where(z > 0, 1.0, 0.1)),
}


def numpy_backprop(weights, biases, activation, x, y):
    """Textbook BP for Linear -> f -> ... -> f -> Linear, loss mean_b 1/2 ||y_b - yhat_b||^2.

    Returns (grads [(dW, db)], deltas {l: d_l (B, n_l)} unnormalised, pre-activations [h_1..h_L]).
    """
    f, df = NUMPY_ACTS[activation]
    n_layers = len(weights)
    pre, inputs = [], []
    a = x
    for l, (W, b) in enumerate(zip(weights, biases)):
        inputs.append(a)
        h = a @ W.T + b
        pre.append(h)
        a = f(h) if l < n_layers - 1 else h
    batch = x.shape[0]
    delta = pre[-1] - y
    deltas = {n_layers: delta}
    grads = [None] * n_layers
    for l in range(n_layers - 1, -1, -1):
        grads[l] = (delta.T @ inputs[l] / batch, delta.sum(axis=0) / batch)
        if l > 0:
            delta = (delta @ weights[l]) * df(pre[l - 1])
            deltas[l] = delta
    return grads, deltas, pre


def flat(grads):
    return np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def finite_differences(net, x, y):
    """Central differences of ``net.loss``, one parameter at a time.

    Smooth activations: Richardson extrapolation of steps 1e-4 and 5e-5 (truncation O(h^4)).
    relu / leaky_relu: with the activation pattern fixed the loss is quadratic in any single
    parameter, so one central difference is exact up to rounding; step 1e-5, and the caller keeps
    every pre-activation at least 1e-3 away from the kink.
    """
    p = net.params
    steps = (1e-5,) if net.activation in KINKED else (1e-4, 5e-5)
    out = np.empty_like(p)
    for i in range(p.size):
        keep = p[i]
        estimates = []
        for h in steps:
            p[i] = keep + h
            up = net.loss(x, y)
            p[i] = keep - h
            down = net.loss(x, y)
            p[i] = keep
            estimates.append((up - down) / (2 * h))
        out[i] = estimates[0] if len(estimates) == 1 else (4 * estimates[1] - estimates[0]) / 3
    return out


def assert_matches_fd(grads, fd, rel, loss):
    """||g - fd|| < rel * ||fd|| + the rounding floor of the differences themselves.

    The floor, 4 eps loss / h_min * sqrt(n_params) (~1e-10 here), only matters for nets whose
    gradient is tiny (deep sigmoid nets: |g| ~ 1e-2); a wrong gradient misses by O(|g|).
    """
    floor = 4 * np.finfo(np.float64).eps * max(loss, 1e-300) / 5e-5 * np.sqrt(fd.size)
    err = float(np.linalg.norm(grads - fd))
    assert err < rel * np.linalg.norm(fd) + floor, (err / np.linalg.norm(fd), floor)


def cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def layer_vector(grad):
    dW, db = grad
    return np.concatenate([dW.ravel(), db.ravel()])


def assert_exactly_zero(array, batch, what, scale=1.0):
    """Exactly zero on both kernel paths (loops and BLAS): tick 0 recomputes bit-identical predictions."""
    worst = float(np.max(np.abs(array))) if np.size(array) else 0.0
    assert worst == 0.0, f"{what} should be exactly 0, max |.| = {worst:.3e}"


def assert_zero(array, batch, what, scale=1.0):
    """Exactly zero, on the hand-written-loop path and the BLAS path alike."""
    worst = float(np.max(np.abs(array))) if np.size(array) else 0.0
    assert worst == 0.0, f"{what} should be 0, max |.| = {worst:.3e}"


# --------------------------------------------------------------------------- strategies
@st.composite
def problems(draw, min_depth=2, max_depth=6, max_width=12, max_batch=8, activation=None):
    depth = draw(st.integers(min_depth, max_depth))
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    act = activation if activation is not None else draw(st.sampled_from(ACTS))
    batch = draw(st.integers(1, max_batch))
    seed = draw(st.integers(0, 2**31 - 1))
    net = ns.mlp(sizes, activation=act, seed=seed % 10_000)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.normal(size=(batch, sizes[-1]))
    return net, x, y


def kink_distance(net, x):
    """Smallest |pre-activation| of a hidden layer (infinite for smooth activations)."""
    if net.activation not in KINKED:
        return np.inf
    _, _, pre = numpy_backprop(list(net.weights), list(net.biases), net.activation, x,
                               np.zeros((x.shape[0], net.n_outputs)))
    return min(float(np.min(np.abs(h))) for h in pre[:-1]) if len(pre) > 1 else np.inf


# --------------------------------------------------------------------------- BP
@pytest.mark.parametrize("act", ACTS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_bp_and_zil_equal_finite_differences(act, data):
    net, x, y = data.draw(problems(activation=act))
    assume(kink_distance(net, x) > 1e-3)
    grads = ns.variant("bp").gradients(net, x, y)
    assert [g[0].shape for g in grads] == [w.shape for w in net.weights]
    assert [g[1].shape for g in grads] == [b.shape for b in net.biases]
    fd = finite_differences(net, x, y)
    loss = net.loss(x, y)
    assert_matches_fd(flat(grads), fd, 1e-7, loss)
    zil = ns.variant("zil").gradients(net, x, y)
    assert_matches_fd(flat(zil), fd, 1e-8, loss)


@settings(max_examples=40, deadline=None)
@given(problems(max_batch=40))
def test_bp_equals_plain_numpy_backprop(problem):
    net, x, y = problem
    expect, _, _ = numpy_backprop(list(net.weights), list(net.biases), net.activation, x, y)
    got = ns.variant("bp").gradients(net, x, y)
    for l, ((gW, gb), (eW, eb)) in enumerate(zip(got, expect), start=1):
        np.testing.assert_allclose(gW, eW, rtol=1e-10, atol=1e-12, err_msg=f"dW_{l}")
        np.testing.assert_allclose(gb, eb, rtol=1e-10, atol=1e-12, err_msg=f"db_{l}")


def test_numpy_oracle_is_not_trivially_equal():
    """The oracle can tell a wrong gradient: perturbing one weight changes its answer."""
    net = ns.mlp([3, 4, 2], activation="tanh", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    before = flat(ns.variant("bp").gradients(net, x, y)).copy()
    expect, _, _ = numpy_backprop(list(net.weights), list(net.biases), "tanh", x, y)
    assert rel_err(before, flat(expect)) < 1e-12
    net.weights[0][0, 0] += 0.1
    assert rel_err(before, flat(ns.variant("bp").gradients(net, x, y))) > 1e-3


# --------------------------------------------------------------------------- Z-IL
@settings(max_examples=40, deadline=None)
@given(problems(max_batch=40))
def test_zil_equals_bp(problem):
    net, x, y = problem
    bp = ns.variant("bp").gradients(net, x, y)
    zil = ns.variant("zil").gradients(net, x, y)
    # Z-IL forms its errors as x_l - mu_l, differences of O(1) values, so each gradient entry carries
    # an absolute rounding of about eps |x| |a|. Where a layer's gradient is itself tiny (a deep chain
    # of sigmoid derivatives: norms of 1e-9 are drawn) that, not the relative error, is the bound.
    assert np.linalg.norm(flat(zil) - flat(bp)) <= 1e-8 * np.linalg.norm(flat(bp)) + 1e-13
    for l, (gz, gb) in enumerate(zip(zil, bp), start=1):
        difference = np.linalg.norm(layer_vector(gz) - layer_vector(gb))
        assert difference <= 1e-8 * np.linalg.norm(layer_vector(gb)) + 1e-13, (l, difference)


@settings(max_examples=30, deadline=None)
@given(problems(max_batch=40), st.floats(0.05, 1.5))
def test_error_neurons_follow_lemma_1(problem, gamma):
    """e_l is 0 before tick L-l and equals gamma^(L-l) * (-d_l) at tick L-l (Z-IL: gamma = 1)."""
    net, x, y = problem
    L = net.n_layers
    _, deltas, _ = numpy_backprop(list(net.weights), list(net.biases), net.activation, x, y)
    for variant, g in ((ns.variant("zil"), 1.0), (ns.variant("il", T=L + 1, gamma=gamma), gamma)):
        trace = ns.Simulator(net, variant).run(x, y, record=("errors",))
        assert len(trace.errors) == L + 1
        for l in range(1, L + 1):
            expect = -(g ** (L - l)) * deltas[l]
            scale = max(1.0, float(np.max(np.abs(expect))))
            np.testing.assert_allclose(trace.errors[l][L - l], expect, rtol=1e-9, atol=1e-11 * scale,
                                       err_msg=f"{variant.name} e_{l} at tick {L - l}")
            if np.any(deltas[l] != 0):
                assert np.any(trace.errors[l][L - l] != 0)
            assert_zero(trace.errors[l][:L - l], x.shape[0], f"{variant.name} e_{l} before tick {L - l}",
                        scale)


def test_lemma_1_exact_zero_on_blas_path():
    """The same Lemma, deterministically, on the BLAS path (batch >= BLAS_MIN_BATCH)."""
    batch = max(dense.BLAS_MIN_BATCH, 20)
    rng = np.random.default_rng(3)
    for act in ACTS:
        net = ns.mlp([4, 6, 5, 7, 3], activation=act, seed=2)
        x, y = rng.normal(size=(batch, 4)), rng.normal(size=(batch, 3))
        L = net.n_layers
        for variant in (ns.variant("zil"), ns.variant("il", T=6, gamma=0.3)):
            trace = ns.Simulator(net, variant).run(x, y, record=("errors",))
            for l in range(1, L + 1):
                assert np.all(trace.errors[l][:L - l] == 0.0), (act, variant.name, l)
                assert np.any(trace.errors[l][L - l] != 0.0), (act, variant.name, l)


@pytest.mark.skipif(dense.BLAS_MIN_BATCH <= 1, reason="no hand-written-loop path")
@pytest.mark.parametrize("act", ACTS)
def test_lemma_1_exact_zero_small_batch(act):
    """Hidden errors of a small batch are exactly 0 at tick 0 and until tick L-l (REFERENCE.md,
    Lemma 1), and IL with T = L-2 leaves layer 1 exactly without an update."""
    net = ns.mlp([5, 7, 6, 4, 3], activation=act, seed=1)
    rng = np.random.default_rng(0)
    batch = min(3, dense.BLAS_MIN_BATCH - 1)
    x, y = rng.normal(size=(batch, 5)), rng.normal(size=(batch, 3))
    L = net.n_layers
    lowest = ns.variant("il", T=L - 2, gamma=0.1).gradients(net, x, y)[0]
    trace = ns.Simulator(net, ns.variant("il", T=L, gamma=0.5)).run(x, y, record=("errors",))
    early = np.concatenate([trace.errors[l][:L - l].ravel() for l in range(1, L)])
    assert_exactly_zero(early, batch, "hidden errors before tick L-l")
    assert_exactly_zero(layer_vector(lowest), batch, "IL layer-1 gradient with T = L - 2")


class ZILScheduleAnyGamma(IL):
    """Z-IL's update schedule (layer l at tick L-l) with IL's gamma: breaks condition 2 only."""

    name = "zil_schedule_test"

    def n_ticks(self, net):
        return net.n_layers - 1

    def update_ticks(self, net):
        return np.array([0] + [net.n_layers - l for l in range(1, net.n_layers + 1)], dtype=np.int64)


@settings(max_examples=25, deadline=None)
@given(problems(min_depth=3, max_batch=20), st.floats(0.2, 0.9))
def test_breaking_gamma_condition_scales_layer_l_by_gamma_power(problem, gamma):
    """With gamma != 1 the Z-IL schedule gives gamma^(L-l) * BP: a real divergence, not rounding."""
    net, x, y = problem
    L = net.n_layers
    bp = ns.variant("bp").gradients(net, x, y)
    got = ZILScheduleAnyGamma(T=L - 1, gamma=gamma).gradients(net, x, y)
    for l in range(1, L + 1):
        expect = gamma ** (L - l) * layer_vector(bp[l - 1])
        np.testing.assert_allclose(layer_vector(got[l - 1]), expect, rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.max(np.abs(expect))))
    lowest = layer_vector(bp[0])
    if np.linalg.norm(lowest) > 1e-8:
        assert rel_err(layer_vector(got[0]), lowest) > 1e-6


@pytest.mark.parametrize("act", ACTS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_breaking_schedule_condition_diverges_from_bp(act, data):
    """IL with gamma = 1 and T = L-1 but every layer updated at tick T (condition 3 broken)."""
    net, x, y = data.draw(problems(min_depth=3, activation=act))
    L = net.n_layers
    _, deltas, _ = numpy_backprop(list(net.weights), list(net.biases), act, x, y)
    assume(np.linalg.norm(deltas[L - 1]) > 1e-6)
    bp = ns.variant("bp").gradients(net, x, y)
    il = ns.variant("il", T=L - 1, gamma=1.0).gradients(net, x, y)
    worst = max(rel_err(layer_vector(a), layer_vector(b)) for a, b in zip(il, bp)
                if np.linalg.norm(layer_vector(b)) > 0)
    assert worst > 1e-6


# --------------------------------------------------------------------------- IL approximates BP
@st.composite
def small_error_problems(draw):
    """One sample, one output, y = yhat + 1e-3 noise.

    Why one sample and one output: at equilibrium the IL errors are BP's chain applied to a
    preconditioned output error, e_L = (I + sum_l J_l J_l^T)^{-1} (y - yhat) per sample. With one
    output the preconditioner is a scalar, so the direction is BP's; with several outputs or several
    samples (nonlinear nets: a different scalar per sample) the cosine drops to ~0.92-0.98 however
    small the output error is -- a property of IL, not a bug.
    """
    depth = draw(st.integers(2, 4))
    sizes = draw(st.lists(st.integers(2, 10), min_size=depth, max_size=depth)) + [1]
    act = draw(st.sampled_from(ACTS))
    seed = draw(st.integers(0, 2**31 - 1))
    net = ns.mlp(sizes, activation=act, seed=seed % 10_000)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, sizes[0]))
    y = net.forward(x) + 1e-3 * rng.normal(size=(1, 1))
    return net, x, y


@settings(max_examples=40, deadline=None)
@given(small_error_problems())
def test_il_approaches_bp_for_small_output_errors(problem):
    net, x, y = problem
    assume(kink_distance(net, x) > 0.05)
    L = net.n_layers
    bp = ns.variant("bp").gradients(net, x, y)
    il = ns.variant("il", T=200, gamma=0.1).gradients(net, x, y)
    checked = 0
    for l in range(1, L + 1):
        b, i = layer_vector(bp[l - 1]), layer_vector(il[l - 1])
        if np.linalg.norm(b) > 1e-10:
            assert cosine(i, b) > 0.99, (l, cosine(i, b))
            checked += 1
    assert checked >= 1
    # "Not before T reaches L": with T < L - 1 the error never reaches layer 1.
    if L >= 3:
        early = ns.variant("il", T=L - 2, gamma=0.1).gradients(net, x, y)
        lowest = layer_vector(early[0])
        assert_zero(lowest, x.shape[0], "IL layer-1 gradient with T = L - 2")
        if x.shape[0] >= dense.BLAS_MIN_BATCH:
            assert not cosine(lowest, layer_vector(bp[0])) > 0.99


def test_il_too_few_ticks_blas_path():
    batch = max(dense.BLAS_MIN_BATCH, 20)
    rng = np.random.default_rng(5)
    net = ns.mlp([6, 8, 8, 8, 2], activation="tanh", seed=4)
    x = rng.normal(size=(batch, 6))
    y = net.forward(x) + 1e-3 * rng.normal(size=(batch, 2))
    bp = ns.variant("bp").gradients(net, x, y)
    for T in range(1, net.n_layers - 1):
        il = ns.variant("il", T=T, gamma=0.1).gradients(net, x, y)
        for l in range(1, net.n_layers - T):
            assert np.all(layer_vector(il[l - 1]) == 0.0), (T, l)
        assert cosine(layer_vector(il[0]), layer_vector(bp[0])) == 0.0
        assert np.any(layer_vector(il[net.n_layers - T - 1]) != 0.0)


# --------------------------------------------------------------------------- fused vs tick-by-tick
VARIANTS = [("bp", {}), ("zil", {}), ("il", {"T": 7, "gamma": 0.2}), ("il", {"T": 1, "gamma": 1.3}),
            ("il", {"T": 30, "gamma": 0.05})]


@pytest.mark.parametrize("name,hyper", VARIANTS)
@settings(max_examples=12, deadline=None)
@given(problem=problems(min_depth=1, max_batch=40))
def test_fused_gradients_equal_simulator(name, hyper, problem):
    net, x, y = problem
    variant = ns.variant(name, **hyper)
    params = net.params.copy()
    step = variant.compute(net, x, y)
    fused = variant.gradients(net, x, y)
    trace = ns.Simulator(net, variant).run(x, y, record=("energy",))
    np.testing.assert_array_equal(net.params, params)  # neither path changes the weights
    np.testing.assert_array_equal(flat(fused), step.grads)
    scale = max(1.0, float(np.max(np.abs(step.grads))))
    np.testing.assert_allclose(flat(trace.grads), step.grads, rtol=1e-13, atol=1e-13 * scale)
    assert trace.loss == pytest.approx(step.loss, rel=1e-14)
    np.testing.assert_allclose(step.output, net.forward(x), rtol=1e-13, atol=1e-13)
    if step.energies is not None:
        np.testing.assert_allclose(trace.energy, step.energies, rtol=1e-13, atol=1e-300)
    assert trace.ticks == variant.n_ticks(net)


# --------------------------------------------------------------------------- float32
@pytest.mark.parametrize("name,hyper", [("bp", {}), ("zil", {}), ("il", {"T": 20, "gamma": 0.1})])
def test_float32_gradients_close_to_float64(name, hyper):
    rng = np.random.default_rng(11)
    for act in ACTS:
        for sizes, batch in (([5, 9, 7, 3], 4), ([8, 12, 12, 12, 4], 24)):
            net32 = ns.mlp(sizes, activation=act, seed=3, dtype="float32")
            net64 = ns.mlp(sizes, activation=act, seed=3, dtype="float64")
            net64.params[...] = net32.params.astype(np.float64)
            x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
            y = rng.normal(size=(batch, sizes[-1])).astype(np.float32)
            g32 = ns.variant(name, **hyper).gradients(net32, x, y)
            g64 = ns.variant(name, **hyper).gradients(net64, x.astype(np.float64), y.astype(np.float64))
            assert all(dW.dtype == np.float32 and db.dtype == np.float32 for dW, db in g32)
            assert rel_err(flat(g32), flat(g64)) < 1e-4, (act, sizes)
            for a, b in zip(g32, g64):
                va, vb = layer_vector(a), layer_vector(b)
                np.testing.assert_allclose(va, vb, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(vb).max()))
