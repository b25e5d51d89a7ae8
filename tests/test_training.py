"""End-to-end training on scikit-learn's digits (oracle: known accuracy; Z-IL = BP), plots, files."""
from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest

import neurosim as ns

EPOCHS = 10
SIZES = [64, 128, 128, 10]


@pytest.fixture(scope="module")
def digits():
    return ns.datasets.digits()


@pytest.fixture(scope="module")
def trained(digits):
    """Each variant trained once from the same start: seed 0, SGD(lr=0.05), batch 32, 10 epochs."""
    out = {}
    for name in ("bp", "il", "zil"):
        net = ns.mlp(SIZES, activation="tanh", seed=0)
        history = ns.train(net, ns.variant(name), digits, ns.optim.SGD(lr=0.05), epochs=EPOCHS,
                           batch_size=32, seed=0, progress=False)
        out[name] = (net, history)
    return out


@pytest.mark.parametrize("name", ["bp", "il", "zil"])
def test_reaches_90_percent_on_digits(trained, digits, name):
    net, history = trained[name]
    assert history.test_accuracy[-1] >= 0.90
    assert ns.evaluate(net, digits)["accuracy"] == history.test_accuracy[-1]
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    untrained = ns.mlp(SIZES, activation="tanh", seed=0)
    assert ns.evaluate(untrained, digits)["accuracy"] < 0.5


@pytest.mark.parametrize("name,ticks", [("bp", 2), ("il", 20), ("zil", 2)])
def test_history_has_one_entry_per_epoch(trained, name, ticks):
    _, history = trained[name]
    assert history.variant == name
    assert history.ticks == ticks
    assert history.epoch == list(range(1, EPOCHS + 1))
    for field in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"):
        values = getattr(history, field)
        assert len(values) == EPOCHS, field
        assert all(np.isfinite(values)), field
    assert all(0.0 <= a <= 1.0 for a in history.train_accuracy + history.test_accuracy)
    assert all(s > 0 for s in history.seconds)
    as_dict = history.to_dict()
    assert as_dict["test_accuracy"] == history.test_accuracy and as_dict["variant"] == name


def test_zil_trains_exactly_like_bp(trained):
    (net_bp, bp), (net_zil, zil) = trained["bp"], trained["zil"]
    for field in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(getattr(zil, field), getattr(bp, field), rtol=1e-10, atol=1e-12,
                                   err_msg=field)
    np.testing.assert_allclose(net_zil.params, net_bp.params, rtol=1e-8, atol=1e-10)


def test_il_is_not_bp(trained):
    """IL approximates BP (same accuracy band) but is a different algorithm: the weights differ."""
    (net_bp, _), (net_il, il) = trained["bp"], trained["il"]
    diff = np.linalg.norm(net_il.params - net_bp.params) / np.linalg.norm(net_bp.params)
    assert 1e-6 < diff < 0.5


def test_training_is_deterministic(digits):
    small = digits.subset(n_train=300, n_test=100)
    runs = []
    for _ in range(2):
        net = ns.mlp([64, 16, 10], activation="tanh", seed=3)
        history = ns.train(net, ns.variant("il", T=5, gamma=0.2), small, ns.optim.SGD(lr=0.1), epochs=2,
                           batch_size=16, seed=7, progress=False)
        runs.append((net.params.copy(), history.train_loss))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    net = ns.mlp([64, 16, 10], activation="tanh", seed=3)
    ns.train(net, ns.variant("il", T=5, gamma=0.2), small, ns.optim.SGD(lr=0.1), epochs=2, batch_size=16,
             seed=8, progress=False)
    assert not np.array_equal(net.params, runs[0][0])  # the shuffling seed matters


def test_history_plot_returns_a_figure(trained):
    _, history = trained["il"]
    fig = history.plot()
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert len(fig.axes) == 2
        loss_ax, acc_ax = fig.axes
        np.testing.assert_array_equal(acc_ax.lines[0].get_ydata(), history.test_accuracy)
        np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), history.train_loss)
        # drawing into given axes returns their figure (e.g. several variants on one plot)
        again = trained["bp"][1].plot(axes=fig.axes, label="bp")
        assert again is fig
        assert len(acc_ax.lines) == 2
    finally:
        plt.close(fig)


def test_save_load_round_trip(trained, tmp_path):
    net, _ = trained["il"]
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = ns.Network.load(path)
    assert loaded.activation == net.activation
    np.testing.assert_array_equal(loaded.sizes, net.sizes)
    np.testing.assert_array_equal(loaded.params, net.params)
    for a, b in zip(loaded.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(7, 64))
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    # the loaded copy is independent of the original
    loaded.params[0] += 1.0
    assert loaded.params[0] != net.params[0]
    as32 = ns.Network.load(path, dtype="float32")
    assert as32.params.dtype == np.float32
    np.testing.assert_array_equal(as32.params, net.params.astype(np.float32))


def test_load_rejects_corrupted_weights(tmp_path):
    net = ns.mlp([4, 3, 2], activation="sigmoid", seed=1)
    state = net.state_dict()
    state["W2"] = np.ones((3, 3))  # wrong shape for W_2 (2, 3)
    path = tmp_path / "bad.npz"
    np.savez(path, **state)
    with pytest.raises(ValueError, match="weights"):
        ns.Network.load(path)


def test_blas_thread_limit_reaches_the_blas_the_kernels_call():
    """numba's np.dot uses SciPy's bundled BLAS; the limit must reach it as well as NumPy's."""
    from threadpoolctl import threadpool_info

    from neurosim import threads

    with threads.limit(1):
        libraries = [info for info in threadpool_info() if info["user_api"] == "blas"]
        assert any("scipy" in info["filepath"] for info in libraries)
        assert all(info["num_threads"] == 1 for info in libraries)


@pytest.mark.parametrize("make", [lambda: ns.optim.SGD(lr=1e30, momentum=0.9),
                                  lambda: ns.optim.Adam(lr=1e38), lambda: ns.optim.MQ(alpha=1e38)],
                         ids=["momentum", "adam", "mq"])
def test_diverging_step_restores_weights_and_optimiser_state(make):
    net = ns.mlp([5, 7, 3], seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    optimizer = make()
    trainer = ns.Trainer(net, ns.variant("bp"), optimizer)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    with pytest.raises(ns.DivergenceError, match="restored|kept"):
        for _ in range(20):
            params, state = net.params.copy(), optimizer.save_state()
            trainer.step(x, y * 100)
    assert np.array_equal(net.params, params)
    now = optimizer.save_state()
    assert state.keys() == now.keys()
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, now[key])
        else:
            assert value == now[key]


def test_hard_samples_at_batch_size_1_are_not_taken_for_a_divergence():
    """At batch size 1 the cross-entropy of one hard digit is hundreds of times that of an easy one;
    the running value the divergence check compares against averages every sound loss, so a few
    hard samples in a row do not stop a run that is learning (IL-prox at its defaults stopped at
    batch 1,288 of its first epoch when only the easy samples entered the average)."""
    data = ns.datasets.digits()
    net = ns.mlp([64, 128, 128, 10], seed=0)
    history = ns.train(net, ns.variant("ilprox"), data, ns.optim.SGD(lr=1.0), epochs=1, batch_size=1,
                       progress=False)
    assert history.test_accuracy[-1] > 0.8


def test_a_loss_that_climbs_steadily_is_caught_at_every_batch_size():
    """COPI at the paper's rates on a tanh network without the warm-up: the loss climbs from 0.6 to
    over 1,000 within the first epoch without ever jumping; the running value must not follow it."""
    data = ns.datasets.digits()
    for batch_size in (50, 32):
        net = ns.mlp([64, 128, 128, 10], seed=0)
        variant = ns.variant("copi", eta=1e-3, eta_r=1e-3, loss_gain=1000.0, output_derivative=True,
                             learn_bias=False)
        with pytest.raises(ns.DivergenceError) as info:
            ns.train(net, variant, data, ns.optim.SGD(lr=1.0), epochs=2, batch_size=batch_size, progress=False)
        assert info.value.epoch == 1
        assert np.all(np.isfinite(net.params))
