"""Oracle: a second implementation. Every tick of every ticked variant, written out in plain NumPy.

Each reference below follows the equations of the variant's docstring (and of the project's
reference notes) tick by tick, with no neurosim code: its own forward pass, activations and
Hebbian terms. The simulator's recorded trajectory (``ns.Simulator(net, variant).run(x, y,
record=("energy", "errors", "values", "predictions"))``) must match it on every tick, layer and
neuron, and the step's weight terms must match too (float64, 1e-10): the whole schedule, not only
the first tick or the final gradient.

    il     x_l += gamma (-e_l + f'(x_l) * (e_{l+1} B_{l+1})) for every hidden layer in parallel,
           mu_l recomputed for l >= 2, B = W (symmetric) or fixed random matrices;
    zil    IL with gamma = 1, T = L - 1, layer l's Hebbian term taken at tick L - l;
    fpa    x_l += gamma (-e_l + f'(mu_l) * (e_{l+1} W_{l+1})), e_l = x_l - mu_l, mu frozen at the
           feed-forward pass, Hebbian terms with the feed-forward activities;
    seqil  top-down sweep l = L-1..1 at step gamma / t, each layer reading the error just updated
           above it, then every prediction and the soft target x_L = (1 - pi) y + pi mu_L;
    ipc    values and weights step together from the state at the start of the tick, then every
           prediction (mu_1 too) with the moved weights.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns

TOL = 1e-10
RECORD = ("energy", "errors", "values", "predictions")

ACTIVATIONS = {
    "tanh": (np.tanh, lambda v: 1.0 - np.tanh(v) ** 2),
    "leaky_relu": (lambda v: np.where(v > 0, v, 0.01 * v), lambda v: np.where(v > 0, 1.0, 0.01)),
    "leaky_relu_0.1": (lambda v: np.where(v > 0, v, 0.1 * v), lambda v: np.where(v > 0, 1.0, 0.1)),
}


class Reference:
    """A network as plain lists: ``W[l]``, ``b[l]`` for l = 1..L (index 0 unused); the state of one
    step (``x``, ``mu``, ``e`` for l = 0..L) and the recorded ticks."""

    def __init__(self, net, x, y):
        self.L = net.n_layers
        self.W = [None] + [np.array(w, dtype=float) for w in net.weights]
        self.b = [None] + [np.array(b, dtype=float) for b in net.biases]
        self.f, self.df = ACTIVATIONS[net.activation]
        self.batch = x.shape[0]
        self.y = y
        self.x = [x.copy()]
        for l in range(1, self.L + 1):
            self.x.append(self.phi(l - 1) @ self.W[l].T + self.b[l])
        self.mu = [np.zeros_like(x)] + [v.copy() for v in self.x[1:]]
        self.e = [np.zeros_like(v) for v in self.x]
        self.recorded = []

    def phi(self, l):
        """phi_0 = identity (the input), f for hidden layers, the output readout linear."""
        return self.x[l] if l in (0, self.L) else self.f(self.x[l])

    def predict(self, l):
        self.mu[l] = self.phi(l - 1) @ self.W[l].T + self.b[l]

    def energy(self):
        return 0.5 * sum(float(np.sum(self.e[l] ** 2)) for l in range(1, self.L + 1)) / self.batch

    def record(self):
        self.recorded.append((self.energy(), [v.copy() for v in self.x], [v.copy() for v in self.mu],
                              [v.copy() for v in self.e]))

    def hebbian(self, l, presynaptic=None):
        """The loss gradient -(1/B) e_l^T phi(x_{l-1}) and -(1/B) sum_b e_l."""
        a = self.phi(l - 1) if presynaptic is None else presynaptic
        return -(self.e[l].T @ a) / self.batch, -self.e[l].sum(axis=0) / self.batch


def reference_il(net, x, y, T, gamma, back=None, update_ticks=None):
    """IL (Whittington & Bogacz 2017): feed-forward init, clamp, T parallel ticks."""
    ref = Reference(net, x, y)
    L = ref.L
    B = ref.W if back is None else [None] + list(back)
    ref.x[L] = y.copy()
    ref.e[L] = ref.x[L] - ref.mu[L]
    due = update_ticks or {l: T for l in range(1, L + 1)}
    grads = {}

    def take(tick):
        for l in range(1, L + 1):
            if due[l] == tick:
                grads[l] = ref.hebbian(l)

    ref.record()
    take(0)
    for tick in range(1, T + 1):
        feedback = [None] + [ref.e[l + 1] @ B[l + 1] for l in range(1, L)]
        for l in range(1, L):
            ref.x[l] = ref.x[l] + gamma * (-ref.e[l] + ref.df(ref.x[l]) * feedback[l])
        for l in range(2, L + 1):
            ref.predict(l)
        for l in range(1, L + 1):
            ref.e[l] = ref.x[l] - ref.mu[l]
        ref.record()
        take(tick)
    return ref, [grads[l] for l in range(1, L + 1)]


def reference_fpa(net, x, y, T, gamma):
    """FPA (Millidge et al. 2020): predictions, gains and presynaptic activities frozen at the
    feed-forward pass."""
    ref = Reference(net, x, y)
    L = ref.L
    frozen_acts = [ref.phi(l) for l in range(L + 1)]
    gains = [None] + [ref.df(ref.mu[l]) for l in range(1, L + 1)]
    ref.x[L] = y.copy()
    ref.e[L] = ref.x[L] - ref.mu[L]
    ref.record()
    for _ in range(T):
        feedback = [None] + [ref.e[l + 1] @ ref.W[l + 1] for l in range(1, L)]
        for l in range(1, L):
            ref.x[l] = ref.x[l] + gamma * (-ref.e[l] + gains[l] * feedback[l])
            ref.e[l] = ref.x[l] - ref.mu[l]
        ref.record()
    return ref, [ref.hebbian(l, frozen_acts[l - 1]) for l in range(1, L + 1)]


def reference_seqil_mse(net, x, y, T, gamma, beta):
    """SeqIL (Alonso, Krichmar & Neftci 2024) with the squared-error output: soft target
    x_L = (1 - pi) y + pi mu_L, pi = 1 / (1 + beta); sweeps top-down at step gamma / t."""
    ref = Reference(net, x, y)
    L = ref.L
    pi = 1.0 / (1.0 + beta)

    def soft_target():
        ref.x[L] = (1.0 - pi) * y + pi * ref.mu[L]
        ref.e[L] = ref.x[L] - ref.mu[L]

    soft_target()
    ref.record()
    for t in range(1, T + 1):
        step = gamma / t
        for l in range(L - 1, 0, -1):  # e_{l+1} is the one just updated (above it) in this sweep
            feedback = ref.e[l + 1] @ ref.W[l + 1]
            ref.x[l] = ref.x[l] + step * (-ref.e[l] + ref.df(ref.x[l]) * feedback)
            ref.e[l] = ref.x[l] - ref.mu[l]
        for l in range(2, L + 1):
            ref.predict(l)
            ref.e[l] = ref.x[l] - ref.mu[l]
        soft_target()
        ref.record()
    return ref, [ref.hebbian(l) for l in range(1, L + 1)]


def reference_ipc(net, x, y, T, gamma, lr_weights):
    """iPC (Salvatori et al. 2024): every tick the values and the weights take one gradient step on
    F from the state at the start of the tick; predictions then use the moved weights. The step's
    gradient is the sum of the per-tick loss gradients."""
    ref = Reference(net, x, y)
    L = ref.L
    ref.x[L] = y.copy()
    ref.e[L] = ref.x[L] - ref.mu[L]
    ref.record()
    total = [(np.zeros_like(ref.W[l]), np.zeros_like(ref.b[l])) for l in range(1, L + 1)]
    for _ in range(T):
        feedback = [None] + [ref.e[l + 1] @ ref.W[l + 1] for l in range(1, L)]
        for l in range(1, L + 1):
            gW, gb = ref.hebbian(l)
            ref.W[l] = ref.W[l] - lr_weights * gW
            ref.b[l] = ref.b[l] - lr_weights * gb
            total[l - 1] = (total[l - 1][0] + gW, total[l - 1][1] + gb)
        for l in range(1, L):
            ref.x[l] = ref.x[l] + gamma * (-ref.e[l] + ref.df(ref.x[l]) * feedback[l])
        for l in range(1, L + 1):
            ref.predict(l)
            ref.e[l] = ref.x[l] - ref.mu[l]
        ref.record()
    return ref, total


# -- comparison ---------------------------------------------------------------------------------------
def _problem(activation="tanh", sizes=(3, 5, 4, 2), batch=2, seed=0):
    net = ns.mlp(list(sizes), activation=activation, seed=seed)
    rng = np.random.default_rng(seed + 100)
    return net, rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))


def _check_trajectory(trace, ref, ticks):
    assert trace.ticks == ticks and len(ref.recorded) == ticks + 1
    for tick, (energy, values, preds, errors) in enumerate(ref.recorded):
        assert abs(trace.energy[tick] - energy) <= TOL * max(1.0, abs(energy)), tick
        for l in range(1, ref.L + 1):
            where = f"tick {tick}, layer {l}"
            assert np.max(np.abs(trace.values[l][tick] - values[l])) <= TOL, f"values, {where}"
            assert np.max(np.abs(trace.predictions[l][tick] - preds[l])) <= TOL, f"predictions, {where}"
            assert np.max(np.abs(trace.errors[l][tick] - errors[l])) <= TOL, f"errors, {where}"
        assert np.array_equal(trace.values[0][tick], ref.x[0])


def _check_grads(got, want):
    for l, ((gW, gb), (wW, wb)) in enumerate(zip(got, want), start=1):
        assert np.max(np.abs(gW - wW)) <= TOL, f"dW_{l}"
        assert np.max(np.abs(gb - wb)) <= TOL, f"db_{l}"


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
@pytest.mark.parametrize("batch", [2, 17])  # hand-written loops and the BLAS path of the kernels
def test_il_every_tick_equals_numpy(feedback, batch):
    net, x, y = _problem(batch=batch)
    variant = ns.variant("il", T=6, gamma=0.3, feedback=feedback)
    trace = ns.Simulator(net, variant).run(x, y, record=RECORD)
    back = None if feedback == "symmetric" else variant.feedback_matrices(net)
    ref, grads = reference_il(net, x, y, 6, 0.3, back)
    _check_trajectory(trace, ref, 6)
    _check_grads(trace.grads, grads)
    _check_grads(variant.gradients(net, x, y), grads)  # the fused call runs the same schedule


def test_random_feedback_is_drawn_from_its_seed():
    """Fixed random B: reproducible from ``feedback_seed``, different for another seed, within the
    documented bound 1/sqrt(n_in), and the trajectory follows the B it reports."""
    net, _, _ = _problem()
    draws = [ns.variant("il", feedback="random", feedback_seed=seed).feedback_matrices(net) for seed in (0, 0, 1)]
    for first, again, other in zip(*draws):
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)
        assert np.max(np.abs(first)) <= 1.0 / np.sqrt(first.shape[1])


def test_zil_full_circuit_every_tick_equals_numpy():
    """Z-IL's circuit (the Simulator) is IL with gamma = 1 and L - 1 ticks, layer l's term at tick
    L - l; its terms are BP's gradient."""
    net, x, y = _problem(sizes=(3, 5, 4, 6, 2))
    L = net.n_layers
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y, record=RECORD)
    ref, grads = reference_il(net, x, y, L - 1, 1.0, update_ticks={l: L - l for l in range(1, L + 1)})
    _check_trajectory(trace, ref, L - 1)
    _check_grads(trace.grads, grads)
    _check_grads(ns.variant("bp").gradients(net, x, y), grads)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_fpa_every_tick_equals_numpy(activation):
    net, x, y = _problem(activation, seed=2)
    variant = ns.variant("fpa", T=5, gamma=0.6)
    trace = ns.Simulator(net, variant).run(x, y, record=RECORD)
    ref, grads = reference_fpa(net, x, y, 5, 0.6)
    _check_trajectory(trace, ref, 5)
    _check_grads(trace.grads, grads)
    if activation == "leaky_relu":  # the frozen gain matters: some value crossed 0 while relaxing
        crossed = any(np.any(np.sign(ref.x[l]) != np.sign(ref.mu[l])) for l in range(1, ref.L))
        assert crossed


def test_fpa_runs_L_ticks_by_default():
    net, x, y = _problem()
    trace = ns.Simulator(net, ns.variant("fpa")).run(x, y, record=RECORD)
    ref, _ = reference_fpa(net, x, y, net.n_layers, 1.0)
    _check_trajectory(trace, ref, net.n_layers)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_seqil_every_tick_equals_numpy(activation):
    net, x, y = _problem(activation, seed=1)
    variant = ns.variant("seqil", T=4, gamma=0.5, beta=3.0, output="mse")
    trace = ns.Simulator(net, variant).run(x, y, record=RECORD)
    ref, grads = reference_seqil_mse(net, x, y, 4, 0.5, 3.0)
    _check_trajectory(trace, ref, 4)
    _check_grads(trace.grads, grads)


def test_ipc_every_tick_equals_numpy():
    net, x, y = _problem(seed=4)
    variant = ns.variant("ipc", T=5, gamma=0.2, lr_weights=0.1)
    params = net.params.copy()
    trace = ns.Simulator(net, variant).run(x, y, record=RECORD)
    ref, grads = reference_ipc(net, x, y, 5, 0.2, 0.1)
    _check_trajectory(trace, ref, 5)
    _check_grads(trace.grads, grads)
    assert np.array_equal(net.params, params)  # the weights moved on a working copy only
