"""Relaxation dynamics, traces, counters and determinism (oracles: closed forms and invariants)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns

ACTS = ns.activations.names()
SMOOTH = ("linear", "tanh", "sigmoid")


@st.composite
def problems(draw, min_depth=1, max_depth=5, max_width=12, max_batch=40, acts=ACTS):
    depth = draw(st.integers(min_depth, max_depth))
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    act = draw(st.sampled_from(acts))
    batch = draw(st.integers(1, max_batch))
    seed = draw(st.integers(0, 2**31 - 1))
    net = ns.mlp(sizes, activation=act, seed=seed % 10_000)
    rng = np.random.default_rng(seed)
    return net, rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))


# --------------------------------------------------------------------------- energy
@settings(max_examples=40, deadline=None)
@given(problems(min_depth=2, acts=SMOOTH), st.floats(0.01, 0.05))
def test_energy_never_increases_for_small_gamma(problem, gamma):
    """IL relaxation is gradient descent on F; for a smooth f and a small step F cannot go up.

    (relu / leaky_relu are left out: F is only piecewise smooth there, and a step across a kink
    can raise it by a little for any finite gamma.)
    """
    net, x, y = problem
    energy = ns.Simulator(net, ns.variant("il", T=50, gamma=gamma)).run(x, y).energy
    assert energy.shape == (51,)
    assert np.all(np.diff(energy) <= 1e-12 * energy[:-1])
    assert energy[-1] < energy[0]


@pytest.mark.parametrize("name,hyper", [("il", {"T": 5, "gamma": 0.1}), ("il", {"T": 3, "gamma": 2.0}),
                                        ("zil", {})])
@settings(max_examples=15, deadline=None)
@given(problem=problems())
def test_energy_at_tick_0_is_the_loss(name, hyper, problem):
    net, x, y = problem
    trace = ns.Simulator(net, ns.variant(name, **hyper)).run(x, y, record=("errors",))
    loss = 0.5 * np.sum((y - net.forward(x)) ** 2) / x.shape[0]
    assert trace.energy[0] == pytest.approx(loss, rel=1e-12, abs=1e-300)
    assert trace.loss == pytest.approx(loss, rel=1e-12, abs=1e-300)
    for l in range(1, net.n_layers):
        assert np.max(np.abs(trace.errors[l][0])) == 0.0


@settings(max_examples=25, deadline=None)
@given(problems(), st.integers(1, 12), st.floats(0.05, 1.0))
def test_trace_shapes_clamps_and_equations(problem, T, gamma):
    """Shapes; x_0 = x and x_L = y at every tick; e = x - mu; F = 1/2 sum ||e||^2 / B; and each tick
    follows x_l <- x_l + gamma (-e_l + f'(x_l) * (e_{l+1} W_{l+1})), mu_l = W_l phi(x_{l-1}) + b_l."""
    net, x, y = problem
    L, B = net.n_layers, x.shape[0]
    trace = ns.Simulator(net, ns.variant("il", T=T, gamma=gamma)).run(
        x, y, record=("energy", "errors", "values", "predictions"))
    assert trace.ticks == T
    assert trace.energy.shape == (T + 1,)
    for series in (trace.errors, trace.values, trace.predictions):
        assert len(series) == L + 1
        for l in range(L + 1):
            assert series[l].shape == (T + 1, B, int(net.sizes[l]))
    assert np.all(trace.errors[0] == 0)
    f = lambda v: ns.activations.apply(net.activation, v)
    df = lambda v: ns.activations.derivative(net.activation, v)
    W, b = list(net.weights), list(net.biases)
    for t in range(T + 1):
        np.testing.assert_array_equal(trace.values[0][t], x)
        np.testing.assert_array_equal(trace.values[L][t], y)
        energy = 0.0
        for l in range(1, L + 1):
            e = trace.errors[l][t]
            np.testing.assert_array_equal(e, trace.values[l][t] - trace.predictions[l][t])
            energy += 0.5 * np.sum(e * e) / B
            a_in = trace.values[0][t] if l == 1 else f(trace.values[l - 1][t])
            np.testing.assert_allclose(trace.predictions[l][t], a_in @ W[l - 1].T + b[l - 1],
                                       rtol=1e-12, atol=1e-12)
            if t > 0 and l < L:
                prev = trace.values[l][t - 1]
                step = -trace.errors[l][t - 1] + df(prev) * (trace.errors[l + 1][t - 1] @ W[l])
                np.testing.assert_allclose(trace.values[l][t], prev + gamma * step, rtol=1e-12, atol=1e-12)
        assert trace.energy[t] == pytest.approx(energy, rel=1e-12, abs=1e-300)


def test_trace_rejects_unknown_quantity():
    net = ns.mlp([2, 3, 1])
    with pytest.raises(ValueError, match="record"):
        ns.Simulator(net, ns.variant("il")).run(np.ones((1, 2)), np.ones((1, 1)), record=("velocity",))


def test_simulator_does_not_change_weights():
    net = ns.mlp([4, 5, 3], activation="tanh", seed=2)
    before = net.params.copy()
    rng = np.random.default_rng(0)
    for name in ("bp", "il", "zil"):
        ns.Simulator(net, ns.variant(name)).run(rng.normal(size=(6, 4)), rng.normal(size=(6, 3)))
        ns.variant(name).gradients(net, rng.normal(size=(6, 4)), rng.normal(size=(6, 3)))
    np.testing.assert_array_equal(net.params, before)


# --------------------------------------------------------------------------- counting
def _layer_macs(net, batch):
    return [batch * int(net.sizes[l]) * int(net.sizes[l - 1]) for l in range(1, net.n_layers + 1)]


def il_macs(net, batch, T):
    """Closed form from neurosim/circuit/ops.py: feed-forward S; at tick 0 only the output's feedback
    e_L W_L (s_L, for L >= 2; mu_L is known from the forward pass); each tick prediction and feedback
    for l = 2..L (2 (S - s_1)); Hebbian S."""
    per = _layer_macs(net, batch)
    S, s1, sL = sum(per), per[0], per[-1]
    return S + (sL if net.n_layers >= 2 else 0) + 2 * T * (S - s1) + S


def _events(counter):
    return sorted(counter.events, key=lambda e: (e.tick, e.layer, e.kernel, e.macs, e.ops, e.messages))


@settings(max_examples=25, deadline=None)
@given(problems(), st.integers(1, 10))
def test_counted_macs_match_closed_forms(problem, T):
    net, x, y = problem
    B, L = x.shape[0], net.n_layers
    per = _layer_macs(net, B)
    S, s1 = sum(per), per[0]
    cases = [("bp", {}, 3 * S - s1, L - 1),
             ("il", {"T": T, "gamma": 0.1}, il_macs(net, B, T), T),
             ("zil", {}, 3 * S - s1, L - 1)]
    for name, hyper, macs, ticks in cases:
        variant = ns.variant(name, **hyper)
        with ns.counting.count() as fused:
            variant.gradients(net, x, y)
        with ns.counting.count() as sim:
            ns.Simulator(net, variant).run(x, y)
        assert fused.macs == macs, name
        assert fused.ticks == ticks, name
        if name == "zil":  # compute runs the wavefront (BP's products), the Simulator the full circuit
            assert (sim.macs, sim.ticks) == (il_macs(net, B, L - 1), ticks)
        else:
            assert (sim.macs, sim.ops, sim.messages) == (fused.macs, fused.ops, fused.messages), name
            assert _events(sim) == _events(fused), name
            assert sim.ticks == fused.ticks
        assert fused.by_kernel()["feedforward"]["macs"] == S
        assert fused.by_kernel()["hebbian"]["macs"] == S


def test_counter_is_off_outside_the_block():
    net = ns.mlp([3, 4, 2])
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    with ns.counting.count() as counter:
        pass
    ns.variant("il").gradients(net, x, y)
    assert counter.events == [] and counter.macs == 0 and counter.ticks == 0
    assert ns.counting.active() is None
    with ns.counting.count() as counter:
        ns.variant("bp").gradients(net, x, y)
    assert counter.macs > 0 and ns.counting.active() is None


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_params_and_gradients():
    sizes = [7, 9, 8, 3]
    a = ns.mlp(sizes, activation="tanh", seed=5)
    b = ns.mlp(sizes, activation="tanh", seed=5)
    c = ns.mlp(sizes, activation="tanh", seed=6)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 7)), rng.normal(size=(20, 3))
    for name, hyper in (("bp", {}), ("zil", {}), ("il", {"T": 15, "gamma": 0.2})):
        ga = ns.variant(name, **hyper).compute(a, x, y).grads
        gb = ns.variant(name, **hyper).compute(b, x, y).grads
        gc = ns.variant(name, **hyper).compute(c, x, y).grads
        np.testing.assert_array_equal(ga, gb)
        assert not np.array_equal(ga, gc)


@pytest.mark.parametrize("name,hyper", [("bp", {}), ("zil", {}), ("il", {"T": 9, "gamma": 0.3})])
def test_workspace_reuse_leaves_no_state_behind(name, hyper):
    """The same batch gives bit-identical gradients before and after other batches (any size)."""
    net = ns.mlp([6, 8, 7, 4], activation="sigmoid", seed=1)
    rng = np.random.default_rng(1)
    batches = [(rng.normal(size=(n, 6)), rng.normal(size=(n, 4))) for n in (5, 5, 20, 1, 33)]
    variant = ns.variant(name, **hyper)
    first = [variant.compute(net, x, y).grads.copy() for x, y in batches]
    again = [variant.compute(net, x, y).grads.copy() for x, y in reversed(batches)][::-1]
    for g1, g2 in zip(first, again):
        np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(first[0], first[1])
