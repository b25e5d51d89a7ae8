"""Optimisers: closed-form steps and state sizes (MQ: one scalar per layer; Adam: two arrays)."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import optim


def _grads(net, seed=0):
    return np.random.default_rng(seed).normal(size=net.params.shape)


def test_registry_and_make():
    assert set(optim.OPTIMIZERS) >= {"sgd", "adam", "mq"}
    assert isinstance(optim.make("mq", alpha=0.01), optim.MQ)


def test_state_bytes_mq_one_scalar_per_layer_adam_two_arrays():
    net = ns.mlp([6, 9, 8, 3])
    mq, adam, sgd = optim.MQ(), optim.Adam(), optim.SGD()
    assert mq.state_bytes() == adam.state_bytes() == sgd.state_bytes() == 0
    for opt in (mq, adam, sgd):
        opt.step(net.copy(), _grads(net))
    assert mq.state_bytes() == net.n_layers * 8
    assert adam.state_bytes() == 2 * net.params.nbytes
    assert sgd.state_bytes() == 0


def test_mq_steps_match_closed_form():
    net = ns.mlp([4, 5, 2], seed=1)
    alpha, lr_min, r = 0.01, 1e-3, 1e-6
    mq = optim.MQ(alpha=alpha, lr_min=lr_min, r=r)
    params = net.params.copy()
    v = np.full(net.n_layers, alpha)
    for n in range(4):
        g = _grads(net, n)
        mq.step(net, g)
        rho = min(n / (n + 1), 0.9999)
        for l in range(1, net.n_layers + 1):
            seg = slice(net.w_off[l], net.b_off[l] + net.sizes[l])
            params[seg] -= (alpha / (v[l - 1] + r) + lr_min) * g[seg]     # descent: minus the loss gradient
            v[l - 1] = rho * v[l - 1] + (1 - rho) * np.mean(np.abs(g[seg]))
        assert np.allclose(net.params, params)
    assert np.allclose(mq.v, v)
    mq.reset()
    assert mq.state_bytes() == 0


def test_mq_equalises_layers():
    """After warm-up each layer moves by about alpha per element whatever its gradient's scale."""
    net = ns.mlp([4, 5, 2], seed=1)
    mq = optim.MQ(alpha=0.01, lr_min=0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = rng.normal(size=net.params.shape)
        g[net.w_off[1]:net.b_off[1] + net.sizes[1]] *= 1000.0
        before = net.params.copy()
        mq.step(net, g)
    moves = [np.mean(np.abs((net.params - before)[net.w_off[l]:net.b_off[l] + net.sizes[l]]))
             for l in (1, 2)]
    assert 0.5 < moves[0] / moves[1] < 2.0


@pytest.mark.parametrize("hyper,word", [({"alpha": -1.0}, "alpha"), ({"lr_min": -1e-3}, "lr_min"),
                                        ({"rho_max": 1.0}, "rho_max"), ({"r": 0.0}, "r")])
def test_mq_bad_hyper(hyper, word):
    with pytest.raises(ValueError, match=word):
        optim.MQ(**hyper)


def test_mq_trains_seqil_on_digits_subset():
    data = ns.datasets.digits().subset(n_train=300, n_test=100)
    net = ns.mlp([64, 32, 10], seed=0)
    history = ns.train(net, ns.variant("seqil"), data, optim.MQ(alpha=1e-3), epochs=3, batch_size=16,
                       progress=False)
    assert history.test_accuracy[-1] > 0.5


def test_an_optimisers_state_never_carries_over_to_another_network():
    first, second = ns.mlp([4, 5, 3], seed=0), ns.mlp([4, 5, 3], seed=1)
    optimizer = ns.optim.Adam(lr=0.1)
    optimizer.step(first, np.ones_like(first.params))
    optimizer.step(first, np.ones_like(first.params))
    assert optimizer.t == 2  # the same network: its state is kept
    start = second.params.copy()
    ns.optim.Adam(lr=0.1).step(second, np.ones_like(second.params))
    from_fresh = second.params.copy()
    second.params[...] = start
    optimizer.step(second, np.ones_like(second.params))  # another network: starts afresh
    assert optimizer.t == 1 and np.array_equal(second.params, from_fresh)
