"""Brian2 as an independent simulator of the same circuit.

Oracle: Brian2 itself. The circuit is rebuilt from neurosim's weights as Brian2 neuron groups and
synapses with summed variables, and stepped by Brian2's clock on its numpy target; its trajectory
must equal ``ns.Simulator``'s on every tick and population (float64, max abs difference < 1e-6, in
practice ~1e-15), and for Z-IL the Hebbian terms read off Brian2's trajectory must equal BP's
gradient.
"""
import numpy as np
import pytest

import neurosim as ns
from neurosim.interop import brian2 as b2


def _data(net, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, net.sizes[0])), rng.normal(size=(batch, net.sizes[-1]))


def _max_difference(ours, theirs):
    fields = ("values", "errors", "predictions")
    return max(max(np.max(np.abs(a - b)) for a, b in zip(getattr(ours, f)[1:], getattr(theirs, f)[1:]))
               for f in fields)


@pytest.mark.parametrize("sizes", [[5, 7, 3], [6, 8, 7, 5, 4, 3]], ids=["3-layer", "5-layer"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "leaky_relu_0.1", "linear"])
def test_il_trajectory_equals_brian2s(sizes, activation):
    net = ns.mlp(sizes, activation=activation, seed=1)
    x, y = _data(net)
    variant = ns.variant("il", T=12, gamma=0.2)
    ours = ns.Simulator(net, variant).run(x, y, record=("energy", "errors", "values", "predictions"))
    theirs = b2.run(net, variant, x, y)
    assert theirs.values[1].shape == ours.values[1].shape == (13, 3, sizes[1])
    assert _max_difference(ours, theirs) < 1e-6
    assert np.max(np.abs(ours.energy - theirs.energy)) < 1e-6
    assert theirs.loss == pytest.approx(ours.loss, abs=1e-12)
    for (dw, db), (ref_w, ref_b) in zip(theirs.grads, variant.gradients(net, x, y)):
        assert np.max(np.abs(dw - ref_w)) < 1e-9 and np.max(np.abs(db - ref_b)) < 1e-9


@pytest.mark.parametrize("hyper", [{}, {"T": 30, "gamma": 0.3}])
def test_fpa_trajectory_equals_brian2s(hyper):
    net = ns.mlp([5, 7, 6, 3], activation="tanh", seed=2)
    x, y = _data(net, seed=2)
    variant = ns.variant("fpa", **hyper)
    ours = ns.Simulator(net, variant).run(x, y, record=("energy", "errors", "values", "predictions"))
    theirs = b2.run(net, variant, x, y)
    assert _max_difference(ours, theirs) < 1e-6
    for (dw, db), (ref_w, ref_b) in zip(theirs.grads, variant.gradients(net, x, y)):
        assert np.max(np.abs(dw - ref_w)) < 1e-9 and np.max(np.abs(db - ref_b)) < 1e-9


@pytest.mark.parametrize("sizes", [[5, 7, 3], [6, 8, 7, 5, 4, 3]], ids=["3-layer", "5-layer"])
def test_zil_from_brian2s_trajectory_equals_bp(sizes):
    net = ns.mlp(sizes, activation="tanh", seed=3)
    x, y = _data(net, seed=3)
    ours = ns.Simulator(net, ns.variant("zil")).run(x, y, record=("energy", "errors", "values", "predictions"))
    theirs = b2.run(net, ns.variant("zil"), x, y)
    assert len(theirs.energy) == len(sizes) - 1  # ticks 0..L-1
    assert _max_difference(ours, theirs) < 1e-6
    for (dw, db), (bp_w, bp_b) in zip(theirs.grads, ns.variant("bp").gradients(net, x, y)):
        assert np.max(np.abs(dw - bp_w)) < 1e-9 and np.max(np.abs(db - bp_b)) < 1e-9


def test_the_circuit_is_made_of_brian2_objects():
    import brian2

    net = ns.mlp([4, 6, 3], seed=0)
    x, y = _data(net)
    circuit = b2.build(net, ns.variant("il", T=3), x, y)
    assert isinstance(circuit.network, brian2.Network)
    assert [group.N for group in circuit.values] == [4 * 3, 6 * 3, 3 * 3]
    assert set(circuit.synapses) == {"W[1]", "W[2]", "W[2]^T", "value[1]->error[1]", "value[2]->error[2]",
                                     "error[1]->value[1]"}
    assert len(circuit.synapses["W[2]"]) == 3 * 6 * 3  # a dense block per sample
    assert "mu_post" in str(circuit.synapses["W[2]"].equations) or circuit.synapses["W[2]"].summed_updaters


@pytest.mark.parametrize("name, match", [("seqil", "top-down sweep"), ("bp", "no relaxation"),
                                         ("ipc", "within a step"), ("copi", "within a step")])
def test_what_brian2_cannot_express_is_refused(name, match):
    net = ns.mlp([4, 6, 3], seed=0)
    x, y = _data(net)
    with pytest.raises(ValueError, match=match):
        b2.run(net, ns.variant(name), x, y)


def test_bad_networks_and_inputs_are_refused():
    from neurosim.layers import Conv2d, Dense, Flatten

    x, y = np.zeros((2, 4)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="dense networks"):
        conv = ns.Network([Conv2d(1, 2, 3, padding=1), Flatten(), Dense(32, 3)], input_shape=(1, 4, 4))
        b2.run(conv, ns.variant("il"), np.zeros((2, 1, 4, 4)), y)
    with pytest.raises(ValueError, match="symmetric feedback"):
        b2.run(ns.mlp([4, 6, 3]), ns.variant("il", feedback="random"), x, y)
    with pytest.raises(TypeError, match="net must be a neurosim Network"):
        b2.run("net", ns.variant("il"), x, y)
    with pytest.raises(TypeError, match="variant must come from"):
        b2.run(ns.mlp([4, 6, 3]), "il", x, y)
    with pytest.raises(ValueError, match="x"):
        b2.run(ns.mlp([4, 6, 3]), ns.variant("il"), np.zeros((2, 5)), y)
    with pytest.raises(ValueError, match="y"):
        b2.run(ns.mlp([4, 6, 3]), ns.variant("il"), x, np.full((2, 3), np.nan))


def test_brian2s_preferences_are_left_as_they_were():
    import brian2

    before = brian2.prefs.codegen.target
    net = ns.mlp([4, 6, 3], seed=0)
    b2.run(net, ns.variant("il", T=2), *_data(net))
    assert brian2.prefs.codegen.target == before
