"""Oracle: an independent automatic-differentiation library (HIPS autograd).

The loss is written here from scratch with ``autograd.numpy`` in the torch convention (``W`` is
``(n_out, n_in)``, ``Linear -> f -> ... -> Linear``); its gradient must match neurosim's BP and Z-IL
updates, which never see this code.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns

ACTIVATIONS = {
    "tanh": anp.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)),
    "linear": lambda z: z,
    "relu": lambda z: anp.maximum(z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, 0.01 * z),
    "leaky_relu_0.1": lambda z: anp.where(z > 0, z, 0.1 * z),
}


def autograd_forward(flat_params, shapes, activation, x):
    """The network's output, from its flat parameters (``W_l`` row-major, then ``b_l``)."""
    f = ACTIVATIONS[activation]
    activity, cursor = x, 0
    for index, (n_out, n_in) in enumerate(shapes):
        weight = anp.reshape(flat_params[cursor:cursor + n_out * n_in], (n_out, n_in))
        cursor += n_out * n_in
        bias = flat_params[cursor:cursor + n_out]
        cursor += n_out
        pre = anp.dot(activity, weight.T) + bias
        activity = pre if index == len(shapes) - 1 else f(pre)
    return activity


def autograd_loss(flat_params, shapes, activation, x, y):
    return 0.5 * anp.sum((y - autograd_forward(flat_params, shapes, activation, x)) ** 2) / x.shape[0]


def flatten(grads):
    return np.concatenate([np.concatenate([dw.ravel(), db]) for dw, db in grads])


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(1, 6), widths=st.lists(st.integers(1, 10), min_size=7, max_size=7),
       batch=st.integers(1, 20), activation=st.sampled_from(sorted(ACTIVATIONS)),
       seed=st.integers(0, 2**16))
def test_bp_and_zil_match_autograd(depth, widths, batch, activation, seed):
    sizes = widths[:depth + 1]
    net = ns.mlp(sizes, activation=activation, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.standard_normal((batch, sizes[-1]))
    shapes = [(sizes[i + 1], sizes[i]) for i in range(depth)]
    # net.params is laid out exactly as autograd_loss reads it (W_l row-major, then b_l).
    reference = grad(autograd_loss)(net.params.copy(), shapes, activation, x, y)
    scale = max(np.abs(reference).max(), 1e-12)
    for name in ("bp", "zil"):
        ours = flatten(ns.variant(name).gradients(net, x, y))
        assert np.abs(ours - reference).max() / scale < 1e-10, name


def autograd_cross_entropy(flat_params, shapes, activation, x, labels):
    """Mean cross-entropy of softmax(yhat) against one-hot ``labels``, from scratch."""
    activity = autograd_forward(flat_params, shapes, activation, x)
    shifted = activity - anp.max(activity, axis=1, keepdims=True)
    log_softmax = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
    return -anp.sum(labels * log_softmax) / x.shape[0]


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 5), widths=st.lists(st.integers(2, 9), min_size=6, max_size=6),
       batch=st.integers(1, 12), activation=st.sampled_from(sorted(ACTIVATIONS)), seed=st.integers(0, 2**16),
       backend=st.sampled_from(["numba", "numpy"]))
def test_bp_with_a_cross_entropy_output_matches_autograd(depth, widths, batch, activation, seed, backend):
    """The baseline for the variants with a soft cross-entropy target: BP on the same loss."""
    sizes = widths[:depth + 1]
    net = ns.mlp(sizes, activation=activation, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]))
    labels = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    shapes = [(sizes[i + 1], sizes[i]) for i in range(depth)]
    reference = grad(autograd_cross_entropy)(net.params.copy(), shapes, activation, x, labels)
    with ns.backends.use(backend):
        ours = flatten(ns.variant("bp", output="ce").gradients(net, x, labels))
    assert np.abs(ours - reference).max() / max(np.abs(reference).max(), 1e-12) < 1e-10


def test_a_cross_entropy_output_needs_two_outputs_and_a_known_loss():
    import pytest

    with pytest.raises(ValueError, match="needs at least 2 outputs"):
        ns.variant("bp", output="ce").gradients(ns.mlp([3, 4, 1]), np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="output must be one of 'mse', 'ce'"):
        ns.variant("bp", output="hinge")
