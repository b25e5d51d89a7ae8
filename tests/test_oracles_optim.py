"""Oracle: closed forms. The first steps of every optimiser, worked out by hand.

Each rule's first one or two steps are written out here term by term from its formula (PyTorch's
SGD and heavy-ball momentum, Kingma & Ba's Adam with both bias corrections, MQ as in Alonso,
Krichmar & Neftci 2024), on the parameters of a tiny network and BP gradients of a fixed batch, and
must match ``optimizer.step`` to 1e-12. A step is all or nothing: one whose new running state is not
finite is refused and leaves the network and the optimiser exactly as they were.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import optim

EXACT = 1e-12


def _problem():
    """A 2-3-2 tanh network and two BP gradients (of two different batches), flat like params."""
    net = ns.mlp([2, 3, 2], seed=3)
    rng = np.random.default_rng(11)
    grads = []
    for _ in range(2):
        x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
        grads.append(ns.variant("bp").compute(net, x, y).grads.copy())
    return net, grads


def _close(got, want):
    assert np.max(np.abs(got - want)) <= EXACT


def test_sgd_first_step_by_hand():
    net, (g1, _) = _problem()
    theta0 = net.params.copy()
    opt = optim.SGD(lr=0.3)
    opt.step(net, g1)
    _close(net.params, theta0 - 0.3 * g1)
    assert opt.velocity is None and opt.state_bytes() == 0


def test_sgd_momentum_first_two_steps_by_hand():
    """v1 = g1, theta1 = theta0 - lr g1; v2 = mu g1 + g2, theta2 = theta1 - lr (mu g1 + g2)."""
    net, (g1, g2) = _problem()
    theta0 = net.params.copy()
    lr, mu = 0.3, 0.9
    opt = optim.SGD(lr=lr, momentum=mu)
    opt.step(net, g1)
    theta1 = theta0 - lr * g1
    _close(net.params, theta1)
    _close(opt.velocity, g1)
    opt.step(net, g2)
    _close(opt.velocity, mu * g1 + g2)
    _close(net.params, theta1 - lr * (mu * g1 + g2))
    assert opt.state_bytes() == net.params.nbytes


def test_adam_first_two_steps_by_hand():
    """Step 1: m1 = (1 - b1) g1, v1 = (1 - b2) g1^2, and with both bias corrections the step is
    lr * g1 / (|g1| + eps). Step 2: m2 = b1 m1 + (1 - b1) g2, v2 = b2 v1 + (1 - b2) g2^2, corrected by
    1 - b1^2 and 1 - b2^2."""
    net, (g1, g2) = _problem()
    theta0 = net.params.copy()
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    opt = optim.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    opt.step(net, g1)
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1 * g1
    theta1 = theta0 - lr * g1 / (np.abs(g1) + eps)
    _close(opt.m, m1)
    _close(opt.v, v1)
    assert opt.t == 1
    _close(net.params, theta1)
    opt.step(net, g2)
    m2 = b1 * m1 + (1 - b1) * g2
    v2 = b2 * v1 + (1 - b2) * g2 * g2
    m2_hat = m2 / (1 - b1 * b1)
    v2_hat = v2 / (1 - b2 * b2)
    _close(opt.m, m2)
    _close(opt.v, v2)
    assert opt.t == 2
    _close(net.params, theta1 - lr * m2_hat / (np.sqrt(v2_hat) + eps))
    assert opt.state_bytes() == 2 * net.params.nbytes


def test_mq_first_two_steps_by_hand():
    """v starts at alpha and rho = N / (N + 1) with N the steps before: step 1 (rho = 0) moves layer
    l by (alpha / (alpha + r) + lr_min) g_l and sets v_l = mean|g1_l|; step 2 (rho = 1/2) moves it by
    (alpha / (mean|g1_l| + r) + lr_min) g2_l and sets v_l = (mean|g1_l| + mean|g2_l|) / 2."""
    net, (g1, g2) = _problem()
    theta = net.params.copy()
    alpha, lr_min, r = 0.02, 1e-3, 1e-6
    opt = optim.MQ(alpha=alpha, lr_min=lr_min, r=r)
    layers = [slice(net.w_off[l], net.b_off[l] + int(net.sizes[l])) for l in (1, 2)]
    opt.step(net, g1)
    for s in layers:
        theta[s] = theta[s] - (alpha / (alpha + r) + lr_min) * g1[s]
    _close(net.params, theta)
    _close(opt.v, np.array([np.mean(np.abs(g1[s])) for s in layers]))
    opt.step(net, g2)
    for s in layers:
        theta[s] = theta[s] - (alpha / (np.mean(np.abs(g1[s])) + r) + lr_min) * g2[s]
    _close(net.params, theta)
    _close(opt.v, np.array([0.5 * np.mean(np.abs(g1[s])) + 0.5 * np.mean(np.abs(g2[s])) for s in layers]))
    assert opt.n_steps == 2 and opt.state_bytes() == 2 * 8


def test_a_step_whose_running_state_overflows_is_refused_whole():
    """Adam's second moment of a 1e200 gradient overflows to inf while the parameters stay finite
    (m / sqrt(v) -> 0): the step must still be refused, nothing written."""
    net, (g1, _) = _problem()
    opt = optim.Adam(lr=0.01)
    opt.step(net, g1)
    params, m, v, t = net.params.copy(), opt.m.copy(), opt.v.copy(), opt.t
    huge = np.full_like(g1, 1e200)
    with pytest.raises(ns.DivergenceError, match="non-finite"):
        opt.step(net, huge)
    assert np.array_equal(net.params, params)
    assert np.array_equal(opt.m, m) and np.array_equal(opt.v, v) and opt.t == t
