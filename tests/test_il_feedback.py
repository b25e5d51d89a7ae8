"""Plain ``il`` with the feedback pathways (symmetric, random = feedback alignment, learned =
Kolen-Pollack). Oracle: an independent NumPy implementation of the IL ticks with ``B`` in place of
``W`` on the way down; the Kolen-Pollack identity; digits accuracy.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim import activations


def numpy_il_with_feedback(weights, biases, back, activation, x, y, T, gamma):
    """IL's gradient, written out: predictions through W, errors carried down through B."""
    L = len(weights)
    phi = [lambda v: v] + [lambda v: activations.apply(activation, v)] * (L - 1) + [lambda v: v]
    values = [x]
    for l in range(1, L + 1):
        values.append(phi[l - 1](values[-1]) @ weights[l - 1].T + biases[l - 1])
    values[L] = y.copy()

    def errors():
        return [None] + [values[l] - (phi[l - 1](values[l - 1]) @ weights[l - 1].T + biases[l - 1])
                         for l in range(1, L + 1)]

    e = errors()
    for _ in range(T):
        for l in range(1, L):
            values[l] = values[l] + gamma * (-e[l] + activations.derivative(activation, values[l])
                                             * (e[l + 1] @ back[l]))
        e = errors()
    B = x.shape[0]
    return [(-(e[l].T @ phi[l - 1](values[l - 1])) / B, -e[l].sum(axis=0) / B) for l in range(1, L + 1)]


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5), batch=st.sampled_from([1, 3, 17]),
       T=st.integers(1, 8), activation=st.sampled_from(["tanh", "sigmoid", "leaky_relu"]),
       kind=st.sampled_from(["symmetric", "random"]))
def test_il_feedback_equals_numpy_ticks(sizes, batch, T, activation, kind):
    net = ns.mlp(sizes, activation=activation, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))
    variant = ns.variant("il", T=T, gamma=0.2, feedback=kind)
    got = variant.gradients(net, x, y)
    back = variant.feedback_matrices(net) or list(net.weights)
    want = numpy_il_with_feedback(list(net.weights), list(net.biases), back, activation, x, y, T, 0.2)
    for (gW, gb), (wW, wb) in zip(got, want):
        np.testing.assert_allclose(gW, wW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, wb, rtol=1e-10, atol=1e-12)


def test_symmetric_is_the_default_and_random_changes_the_update():
    net = ns.mlp([5, 6, 6, 3], seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    plain = ns.variant("il").compute(net, x, y).grads
    assert np.array_equal(ns.variant("il", feedback="symmetric").compute(net, x, y).grads, plain)
    rnd = ns.variant("il", feedback="random").compute(net, x, y).grads
    top = slice(net.w_off[3], net.params.size)
    cosine = rnd[top] @ plain[top] / (np.linalg.norm(rnd[top]) * np.linalg.norm(plain[top]))
    assert cosine > 0.5                                    # driven by the same output error
    first = slice(0, net.b_off[1])
    assert not np.allclose(rnd[first], plain[first])


@pytest.mark.parametrize("batch", [1, 20])
def test_fused_training_step_uses_the_feedback_matrices(batch):
    net = ns.mlp([5, 8, 6, 3], seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(batch, 5)), rng.normal(size=(batch, 3))
    fused, plain = net.copy(), net.copy()
    ns.Trainer(fused, ns.variant("il", T=6, feedback="random"), ns.optim.SGD(lr=0.1)).step(x, y)
    step = ns.variant("il", T=6, feedback="random").compute(plain, x, y)
    ns.optim.SGD(lr=0.1).step(plain, step.grads)
    np.testing.assert_allclose(fused.params, plain.params, rtol=0, atol=1e-13)


def test_kolen_pollack_on_il_shrinks_w_minus_b():
    net = ns.mlp([5, 6, 6, 3], seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    variant = ns.variant("il", feedback="learned", feedback_lr=0.1, feedback_decay=0.5)
    gaps = [w - b for w, b in zip(net.weights, variant.feedback_matrices(net))]
    variant.gradients(net, x, y)                               # does not move B
    ns.Simulator(net, variant).run(x, y)                       # nor does the simulator
    for w, b, gap in zip(net.weights, variant.feedback_matrices(net), gaps):
        assert np.array_equal(w - b, gap)
    trainer = ns.Trainer(net, variant, ns.optim.SGD(lr=0.1))  # learned B: the unfused path
    assert trainer.step(x, y).grads is not None
    for w, b, gap in zip(net.weights, variant.feedback_matrices(net), gaps):
        np.testing.assert_allclose(w - b, (1 - 0.1 * 0.5) * gap, rtol=1e-12, atol=1e-14)


def test_feedback_option_validation():
    with pytest.raises(ValueError, match="feedback"):
        ns.variant("il", feedback="transposed")
    with pytest.raises(ValueError, match="feedback_lr"):
        ns.variant("il", feedback="learned", feedback_lr=-1.0)
    with pytest.raises(TypeError, match="feedback"):
        ns.variant("zil", feedback="random")                   # Z-IL is exact BP: no option
    cnn = ns.Network([ns.layers.Conv2d(1, 2, 3), ns.layers.Flatten(), ns.layers.Dense(2 * 6 * 6, 3)],
                     input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="dense"):
        ns.variant("il", feedback="random").check_network(cnn)


@pytest.mark.parametrize("kind", ["random", "learned"])
def test_il_with_feedback_alignment_learns_digits(kind):
    digits = ns.datasets.digits()
    net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0, dtype="float32")
    history = ns.train(net, ns.variant("il", feedback=kind), digits, ns.optim.SGD(lr=0.05), epochs=10,
                       batch_size=32, progress=False)
    assert history.test_accuracy[-1] >= 0.88
