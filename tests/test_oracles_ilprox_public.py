"""IL-prox against an independent transcription of the public code's step (``proxPC.py``).

The oracle below follows ``ProxPC.compute_PC_targets`` and ``ProxPC.PC_update`` line by line on a
ReLU network with a softmax output (batch > 1, so the batch-sum target norm matters), written here
in NumPy without neurosim's schedule or kernels. ``variant.gradients`` with ``normalisation="public"``
must give the same parameter change (trained with ``SGD(lr=1)``) on both backends, in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns


def _relu(z):
    return np.maximum(z, 0.0)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _public_step(weights, biases, x, target, n_iter, bot_gamma, top_gamma, lr, eps):
    """Weights and biases after one proxPC step; layers are ``Linear(ReLU(h))`` with the input
    passed through ReLU too (non-negative inputs here, so it is the identity)."""
    n = len(weights) + 1
    layer = lambda i, h: _relu(h) @ weights[i].T + biases[i]   # noqa: E731  wts[i]: ReLU then Linear
    h = [x]
    for i in range(1, n):
        h.append(layer(i - 1, h[-1]))
    targ = [v.copy() for v in h]
    nm = np.mean(np.sum(_relu(h[-2]) ** 2, axis=1)) + eps                       # no bias term here
    targ[-1] = softmax_blend = (1 / (1 + nm * lr)) * _softmax(h[-1]) + (nm * lr / (1 + nm * lr)) * target
    del softmax_blend
    errors = [np.zeros_like(v) for v in h]
    p = [h[0]] + [layer(i, targ[i]) for i in range(n - 1)]
    for _ in range(n_iter):
        for i in range(1, n - 1):
            errors[i] = targ[i] - p[i]
        errors[-1] = targ[-1] - _softmax(p[-1])
        for i in range(1, n - 1):
            drive = (errors[i + 1] @ weights[i]) * (targ[i] > 0)
            targ[i] = targ[i] + top_gamma * -errors[i] + bot_gamma * drive
        nm = np.sum(_relu(targ[-2]) ** 2) + 1 + eps                              # the batch sum
        targ[-1] = (1 / (1 + nm * lr)) * _softmax(p[-1]) + (nm * lr / (1 + nm * lr)) * target
        p = [h[0]] + [layer(i, targ[i]) for i in range(n - 1)]
    new_w, new_b = [], []
    for i in range(n - 1):
        pred = layer(i, targ[i])
        e = targ[i + 1] - (_softmax(pred) if i == n - 2 else pred)
        grad_w = -e.T @ _relu(targ[i]) / len(e)
        grad_b = np.mean(-e, axis=0)
        nm = np.mean(np.sum(_relu(targ[i]) ** 2, axis=1)) + 1 + eps
        new_w.append(weights[i] - grad_w / nm)
        new_b.append(biases[i] - grad_b / nm)
    return new_w, new_b


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name, hyper", [
    ("ilprox", {"T": 25, "gamma": 0.015, "gamma_error": 0.015, "alpha": 5.0, "eps": 0.25}),
    ("ilprox_fast", {}),
    ("ilprox", {"T": 7, "gamma": 0.05, "gamma_error": 0.02, "alpha": 0.7, "eps": 1.0}),
], ids=["ilprox-mnist", "ilprox_fast-defaults", "ilprox-other"])
@pytest.mark.parametrize("sizes, batch", [([6, 9, 7, 4], 5), ([5, 8, 3], 1), ([4, 6, 6, 6, 3], 3)])
def test_public_normalisation_is_the_public_code_step(backend, name, hyper, sizes, batch):
    net = ns.mlp(sizes, activation="relu", seed=3, dtype="float64")
    rng = np.random.default_rng(len(sizes) + batch)
    x = rng.uniform(0.0, 1.0, size=(batch, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)]
    variant = ns.variant(name, normalisation="public", output="ce", **hyper)
    settings = variant.hyper
    expected_w, expected_b = _public_step(
        [w.copy() for w in net.weights], [b.copy() for b in net.biases], x, y, settings["T"],
        settings["gamma"], settings["gamma"] if settings["gamma_error"] is None else settings["gamma_error"],
        settings["alpha"], settings["eps"])
    with ns.backends.use(backend):
        grads = variant.gradients(net, x, y)
    for layer, (dW, db) in enumerate(grads):
        np.testing.assert_allclose(net.weights[layer] - dW, expected_w[layer], rtol=0, atol=1e-12)
        np.testing.assert_allclose(net.biases[layer] - db, expected_b[layer], rtol=0, atol=1e-12)


def test_ilprox_fast_takes_the_public_fast_settings():
    hyper = ns.variant("ilprox_fast").hyper
    assert (hyper["T"], hyper["gamma"], hyper["gamma_error"], hyper["eps"]) == (12, 0.025, 0.0, 0.25)


@pytest.mark.parametrize("sizes, batch", [([6, 9, 7, 4], 5), ([5, 8, 3], 1)])
def test_public_and_batch_mean_normalisations_agree_only_where_they_should(sizes, batch):
    """They differ on every step (tick 0 has no bias term in the public code); the difference is
    the tick-0 target's, and the later norms' batch sum, so it exists at batch 1 too."""
    net = ns.mlp(sizes, activation="relu", seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(batch, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)]
    public = ns.variant("ilprox", normalisation="public").gradients(net, x, y)
    ours = ns.variant("ilprox").gradients(net, x, y)
    gap = max(float(np.max(np.abs(a[0] - b[0]))) for a, b in zip(public, ours))
    assert gap > 1e-8


@pytest.mark.parametrize("hyper, word", [({"normalisation": "paper"}, "normalisation"),
                                         ({"gamma_error": -0.1}, "gamma_error"),
                                         ({"gamma_error": float("nan")}, "gamma_error")])
def test_bad_ilprox_settings_name_the_argument(hyper, word):
    with pytest.raises(ValueError, match=word):
        ns.variant("ilprox", **hyper)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("hyper", [{"normalisation": "public"}, {"normalisation": "public", "gamma_error": 0.0}])
def test_public_normalisation_under_send_on_delta_at_threshold_0_is_the_dense_step(backend, hyper):
    """The blends the public target adds ("nlms_sum", "keep") on the event kernels too."""
    net = ns.mlp([6, 9, 7, 4], activation="relu", seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(5, 6))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    variant = ns.variant("ilprox", **hyper)
    with ns.backends.use(backend):
        dense = variant.gradients(net, x, y)
        events = variant.gradients(net, x, y, events=ns.events.SendOnDelta(0.0))
    for (dW, db), (eW, eb) in zip(dense, events):
        np.testing.assert_allclose(eW, dW, rtol=0, atol=1e-12)
        np.testing.assert_allclose(eb, db, rtol=0, atol=1e-12)
