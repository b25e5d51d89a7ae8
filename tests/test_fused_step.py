"""The fused IL training step (one call: inference + Hebbian SGD update) against its references.

Oracles: the NumPy reference ``reference.relax_and_learn``, and the unfused path
(``variant.compute`` then ``SGD.step``), in float64 to rounding; bitwise-unchanged parameters
when a step diverges; equal work counts.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.kernels import reference


def _problem(sizes, batch, activation, dtype="float64", seed=0):
    net = ns.mlp(sizes, activation=activation, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, sizes[0])).astype(dtype)
    y = rng.normal(size=(batch, sizes[-1])).astype(dtype)
    return net, x, y


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=6),
       batch=st.sampled_from([1, 2, 7, 16, 21]),
       activation=st.sampled_from(["tanh", "sigmoid", "relu", "leaky_relu", "linear"]),
       ticks=st.integers(1, 12), gamma=st.floats(0.01, 0.5), lr=st.floats(1e-3, 0.5))
def test_fused_step_equals_numpy_reference_and_unfused_path(sizes, batch, activation, ticks, gamma, lr):
    net, x, y = _problem(sizes, batch, activation)
    unfused, ref_w, ref_b = net.copy(), [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    variant = ns.variant("il", T=ticks, gamma=gamma)

    step = ns.Trainer(net, variant, ns.optim.SGD(lr=lr)).step(x, y)
    assert step.grads is None  # the update went straight into the weights

    status, loss, output, energies = reference.relax_and_learn(ref_w, ref_b, activation, gamma, ticks, x, y, lr)
    assert status == 0
    for W, b, W_ref, b_ref in zip(net.weights, net.biases, ref_w, ref_b):
        np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, b_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(step.energies, energies, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(step.output, output, rtol=0, atol=1e-13)
    assert step.loss == pytest.approx(loss, rel=1e-12, abs=1e-15)

    plain = variant.compute(unfused, x, y)
    ns.optim.SGD(lr=lr).step(unfused, plain.grads)
    np.testing.assert_allclose(net.params, unfused.params, rtol=0, atol=1e-12)


def test_fused_hidden_errors_are_exactly_zero_below_the_error_front():
    """Lemma 1 exactly: the feed-forward pass that also measures max|W| sums as the tick kernel does."""
    net, x, y = _problem([6, 9, 9, 9, 4], 3, "tanh", dtype="float32")
    ws = net.workspace(3)
    ns.Trainer(net, ns.variant("il", T=1, gamma=0.1), ns.optim.SGD(lr=1e-3)).step(x, y)
    # After one tick the error has reached layer L - 1 only: layers 1..L-2 are exactly 0.
    for layer in range(1, net.n_layers - 1):
        assert np.all(ws.layer("errors", layer) == 0.0)
    assert np.any(ws.layer("errors", net.n_layers - 1) != 0.0)


@pytest.mark.parametrize("batch", [1, 20])
def test_diverging_inference_leaves_parameters_bitwise_unchanged(batch):
    net, x, y = _problem([5, 8, 8, 3], batch, "linear", seed=3)
    net.params[...] *= 30.0
    before = net.params.copy()
    trainer = ns.Trainer(net, ns.variant("il", T=400, gamma=1.9), ns.optim.SGD(lr=0.1))
    with pytest.raises(ns.DivergenceError, match="gamma") as info:
        trainer.step(x, y * 1e3)
    assert info.value.tick is not None and info.value.tick > 0
    assert np.array_equal(net.params, before)


@pytest.mark.parametrize("batch", [1, 20])
def test_overflowing_update_leaves_parameters_bitwise_unchanged(batch):
    net, x, y = _problem([5, 8, 3], batch, "tanh", dtype="float32", seed=1)
    before = net.params.copy()
    trainer = ns.Trainer(net, ns.variant("il", T=5, gamma=0.1), ns.optim.SGD(lr=1e38))
    with pytest.raises(ns.DivergenceError, match="non-finite"):
        trainer.step(x, y * 1e3)
    assert np.array_equal(net.params, before)


@pytest.mark.parametrize("batch", [1, 20])
def test_large_but_finite_weights_take_the_checked_path_and_still_update(batch):
    """A weight near the dtype's limit fails the cheap bound; the exact check then lets the update through."""
    net, x, y = _problem([4, 6, 3], batch, "tanh", dtype="float32", seed=2)
    # Finite, and harmless: input 0 is silent, so the weight neither predicts nor learns; but the
    # cheap bound (0.25 * max float32) no longer holds.
    x[:, 0] = 0.0
    net.weights[0][0, 0] = 1e38
    unfused = net.copy()
    variant = ns.variant("il", T=4, gamma=0.1)
    ns.Trainer(net, variant, ns.optim.SGD(lr=0.05)).step(x, y)
    plain = variant.compute(unfused, x, y)
    ns.optim.SGD(lr=0.05).step(unfused, plain.grads)
    assert np.all(np.isfinite(net.params))
    np.testing.assert_allclose(net.params, unfused.params, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["il", "seqil", "fpa", "ipc", "ilprox", "zil"])
def test_fused_step_counts_the_same_work_as_the_unfused_path(name):
    """The fused step records its work from the plan kept with the workspace; two steps (the
    second finds the plan built) count twice what the unfused path counts once, event by event,
    and the running totals grow by as much."""
    net, x, y = _problem([7, 12, 9, 5], 4, "tanh")
    variant = ns.variant("il", T=6, gamma=0.1) if name == "il" else ns.variant(name)
    trainer = ns.Trainer(net.copy(), variant, ns.optim.SGD(lr=1e-3))
    assert trainer.step(x, y).grads is None  # the fused path ran
    with ns.counting.count() as fused:
        trainer.step(x, y)
        trainer.step(x, y)
    before = ns.counting.totals().macs  # outside count(): the process-wide totals receive the step
    trainer.step(x, y)
    grown = ns.counting.totals().macs - before
    with ns.counting.count() as plain:
        variant.compute(net.copy(), x, y)
    assert fused.events == plain.events + plain.events
    assert grown == plain.macs > 0


def test_other_optimisers_and_variants_take_the_unfused_path():
    net, x, y = _problem([5, 6, 3], 2, "tanh")
    assert ns.Trainer(net, ns.variant("il"), ns.optim.SGD(lr=0.1, momentum=0.9)).step(x, y).grads is not None
    assert ns.Trainer(net, ns.variant("il"), ns.optim.Adam()).step(x, y).grads is not None
    assert ns.Trainer(net, ns.variant("copi"), ns.optim.SGD(lr=1.0)).step(x, y).grads is not None
    assert ns.Trainer(net, ns.variant("il", feedback="learned"), ns.optim.SGD(lr=0.1)).step(x, y).grads is not None
    with ns.backends.use("numpy"):
        assert ns.Trainer(net, ns.variant("il"), ns.optim.SGD(lr=0.1)).step(x, y).grads is not None


def test_trainer_rejects_bad_arguments_and_bad_data_before_any_kernel():
    net, x, y = _problem([5, 6, 3], 2, "tanh")
    with pytest.raises(TypeError, match="optimizer"):
        ns.Trainer(net, ns.variant("il"), optimizer="sgd")
    with pytest.raises(TypeError, match="variant"):
        ns.Trainer(net, "il")
    trainer = ns.Trainer(net, ns.variant("il"), ns.optim.SGD(lr=0.1))
    before = net.params.copy()
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        trainer.step(bad, y)
    with pytest.raises(ValueError, match="y must have shape"):
        trainer.step(x, y[:, :2])
    assert np.array_equal(net.params, before)


def test_a_subclass_with_its_own_schedule_is_fused_and_runs_its_schedule():
    """A variant is its schedule: a subclass that moves the Hebbian terms gets the fused step of its
    own schedule (no detection of overridden methods), equal to its compute and SGD."""
    from neurosim.variants.il import IL

    class EarlyIL(IL):
        name = "il_early_test"

        def update_ticks(self, net):
            return np.full(net.n_layers + 1, 2, dtype=np.int64)

    net, x, y = _problem([5, 6, 6, 3], 3, "tanh")
    unfused = net.copy()
    step = ns.Trainer(net, EarlyIL(T=6), ns.optim.SGD(lr=0.1)).step(x, y)
    assert step.grads is None
    plain = EarlyIL(T=6).compute(unfused, x, y)
    ns.optim.SGD(lr=0.1).step(unfused, plain.grads)
    np.testing.assert_allclose(net.params, unfused.params, rtol=1e-12, atol=1e-14)
    reference = ns.variant("il", T=6).compute(net.copy(), x, y).grads
    assert np.max(np.abs(plain.grads - reference)) > 1e-6  # its own schedule, not IL's


@pytest.mark.parametrize("fused", [True, False])
def test_ipc_working_weights_start_from_the_network_at_every_step(fused):
    """iPC moves its weights on a working copy kept with the workspace; each step starts it again
    from ``net.params``, so a step after another equals the same step on a fresh network and
    workspace (nothing of the earlier step's moved weights leaks into the next)."""
    net, x, y = _problem([6, 10, 8, 3], 2, "tanh")
    other_x = np.flip(x, axis=1).copy()
    variant = ns.variant("ipc", T=5, lr_weights=0.05)
    if fused:
        # lr != lr_weights: the update blends, so the moved weights differ from the new net.params
        trainer = ns.Trainer(net, variant, ns.optim.SGD(lr=0.02))
        trainer.step(other_x, y)
        fresh = net.copy()
        assert trainer.step(x, y).grads is None  # the fused path ran
        ns.Trainer(fresh, ns.variant("ipc", T=5, lr_weights=0.05), ns.optim.SGD(lr=0.02)).step(x, y)
        np.testing.assert_array_equal(net.params, fresh.params)
    else:
        start = net.params.copy()
        variant.compute(net, other_x, y)
        again = variant.compute(net, x, y)
        np.testing.assert_array_equal(net.params, start)  # compute leaves the network as it was
        expected = ns.variant("ipc", T=5, lr_weights=0.05).compute(net.copy(), x, y)
        np.testing.assert_array_equal(again.grads, expected.grads)
