"""Oracle: hand counts of the arithmetic that ``copi`` and ``implicit_sgd`` run.

Both variants do their arithmetic in NumPy and report it to :mod:`neurosim.counting` through the
templates of :mod:`neurosim.circuit.work`. Here the MACs are counted again by hand from the layer
sizes and the papers' equations (COPI: forward, decorrelation, credit, weight and decorrelation
rules; implicit SGD: one forward-backward pass per evaluation of the proximal objective plus the
dot products the solver takes, observed by wrapping the functions it calls).
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import complexity, counting
from neurosim.variants import implicit_sgd as isgd_module


def _batch(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, net.n_inputs)), rng.normal(size=(batch, net.n_outputs))


def _copi_hand_macs(sizes, batch):
    """COPI's step by hand: forward ``h_l = M_l y_{l-1}``; decorrelated inputs ``x_l = R_l y_{l-1}``;
    credit ``delta_l = f' * (delta_{l+1} M_{l+1})``; per layer the moments ``x^T x``, the weight rule
    ``(a + g delta)^T x``, ``C R`` and the effective matrix ``W R``."""
    macs = 0
    L = len(sizes) - 1
    for l in range(1, L + 1):
        n_in, n_out = sizes[l - 1], sizes[l]
        macs += batch * n_in * n_out          # forward
        macs += batch * n_in * n_in           # x_l = R_l y_{l-1}
        if l >= 2:
            macs += batch * n_out * n_in      # delta_{l} M_{l} carried to layer l - 1
        macs += batch * n_in * n_in           # <x x^T>
        macs += batch * n_out * n_in          # <(a + g delta) x^T>
        macs += n_in ** 3                     # C_l R_l
        macs += n_out * n_in * n_in           # W_l R_l
    return macs


@pytest.mark.parametrize("credit", ["bp", "fa"])
@pytest.mark.parametrize("sizes,batch", [([4, 5, 6, 3], 3), ([7, 2], 1), ([3, 8, 8, 8, 2], 5)])
def test_copi_counted_macs_equal_the_hand_count(sizes, batch, credit):
    net = ns.mlp(sizes, seed=0)
    x, y = _batch(net, batch)
    variant = ns.variant("copi", credit=credit, eta=0.05, eta_r=0.05)
    with counting.count() as first:
        variant.compute(net, x, y)
    assert first.macs == _copi_hand_macs(sizes, batch)
    kernels = first.by_kernel()
    L = len(sizes) - 1
    assert kernels["decorrelate"]["calls"] == kernels["decorrelation_update"]["calls"] == L
    assert kernels["decorrelation_update"]["macs"] == sum(n ** 3 for n in sizes[:-1])
    assert kernels.get("feedback", {"calls": 0})["calls"] == L - 1
    # the counts do not depend on the state: a second step (R != I now) counts the same
    with counting.count() as second:
        variant.compute(net, x, y)
    assert second.macs == first.macs and second.ops == first.ops and second.messages == first.messages
    # the tick-by-tick simulator runs the same arithmetic
    with counting.count() as ticked:
        ns.Simulator(net, variant).run(x, y)
    assert ticked.macs == first.macs


def test_copi_update_of_layer_l_is_stamped_when_its_delta_arrives():
    net = ns.mlp([4, 5, 6, 3], seed=0)
    x, y = _batch(net, 2)
    with counting.count() as counter:
        ns.variant("copi").compute(net, x, y)
    stamps = {event.layer: event.tick for event in counter.events if event.kernel == "copi_weights"}
    assert stamps == {3: 0, 2: 1, 1: 2}
    assert counter.ticks == net.n_layers - 1


def test_complexity_measures_copi_and_its_critical_path():
    """Hand-derived chain: BP's 2L (forward L, delta down L - 1, the weight rule of layer 1) plus
    the effective matrix W_1 R_1 formed after it; for L = 1 the longer chain is the decorrelated
    input, its moments <x x^T> (the rule's <x_j^2>), the weight rule and W R: 4."""
    for depth in (1, 2, 4, 6):
        net = ns.mlp([5] + [6] * (depth - 1) + [3], seed=depth)
        report = complexity.measure(net, "copi", batch_size=2)
        assert report.macs == _copi_hand_macs(list(net.sizes), 2)
        assert report.critical_path == max(2 * depth + 1, 4)
        assert report.ticks == depth - 1 and report.all_layers_updated


def _evaluation_macs(sizes, batch):
    """One forward-backward pass of BP on the batch: forward, gradients, deltas carried down."""
    L = len(sizes) - 1
    forward = sum(batch * sizes[l - 1] * sizes[l] for l in range(1, L + 1))
    down = sum(batch * sizes[l - 1] * sizes[l] for l in range(2, L + 1))
    return 2 * forward + down, forward


def test_implicit_sgd_one_evaluation_hand_count():
    """With a tolerance every start meets, the solver evaluates P once and takes three norms
    (the scale, the first residual, the final residual)."""
    net = ns.mlp([4, 5, 6, 3], seed=0)
    x, y = _batch(net, 3)
    n_params = net.params.size
    with counting.count() as counter:
        ns.variant("implicit_sgd", tol=10.0).compute(net, x, y)
    evaluation, forward = _evaluation_macs(list(net.sizes), 3)
    # begin's forward pass + one evaluation (with the prox term's ||theta - theta_b||^2) + 3 norms
    assert counter.macs == forward + (evaluation + n_params) + 3 * n_params


@pytest.mark.parametrize("output", ["mse", "ce"])
def test_implicit_sgd_counted_macs_follow_every_inner_iteration(monkeypatch, output):
    """Observe the solver from outside: every evaluation of P calls ``loss_and_grads`` once and
    every dot product goes through ``_dot``; the counted MACs must equal the hand count of those."""
    calls = {"evaluations": 0, "dot_macs": 0}
    real_loss, real_dot = isgd_module.loss_and_grads, isgd_module._dot

    def loss_and_grads(*args):
        calls["evaluations"] += 1
        return real_loss(*args)

    def dot(a, b):
        calls["dot_macs"] += a.size
        return real_dot(a, b)

    monkeypatch.setattr(isgd_module, "loss_and_grads", loss_and_grads)
    monkeypatch.setattr(isgd_module, "_dot", dot)
    net = ns.mlp([4, 6, 5, 3], activation="tanh", seed=1)
    x, y = _batch(net, 4, 1)
    if output == "ce":
        y = np.eye(3)[[0, 1, 2, 0]]
    variant = ns.variant("implicit_sgd", alpha=0.5, output=output, tol=1e-8, max_iter=2000)
    with counting.count() as counter:
        variant.compute(net, x, y)
    evaluations = calls["evaluations"]
    assert evaluations > 5 and variant.info["iterations"] > 3
    evaluation, forward = _evaluation_macs(list(net.sizes), 4)
    assert counter.macs == forward + evaluations * evaluation + calls["dot_macs"]
    kernels = counter.by_kernel()
    L = net.n_layers
    assert kernels["solver_output"]["calls"] == evaluations
    # every evaluation after the first is at a new candidate theta_k - step * grad P
    assert kernels["solver_step"]["calls"] == L * (evaluations - 1)
    assert kernels["solver_step"]["ops"] == 2 * net.params.size * (evaluations - 1)


def test_complexity_measures_implicit_sgd():
    net = ns.mlp([5, 6, 3], activation="tanh", seed=0)
    short = complexity.measure(net, ("implicit_sgd", {"tol": 1e-2}), batch_size=2)
    long = complexity.measure(net, ("implicit_sgd", {"tol": 1e-8}), batch_size=2)
    bp = complexity.measure(net, "bp", batch_size=2)
    assert short.ticks == long.ticks == 0
    assert bp.macs < short.macs < long.macs
    # a solve is a chain of evaluations, each at least as long as BP's forward-backward chain
    assert bp.critical_path < short.critical_path < long.critical_path
