"""Many-to-one Elman RNNs unrolled into predictive-coding circuits: Z-IL = BPTT = finite differences.

Oracles: an explicit NumPy forward pass and BPTT written here (no neurosim code), central finite
differences of ``net.loss``, and BP. Salvatori et al. 2021 (arXiv 2103.03725): each time copy of a
shared weight is updated at the tick equal to its distance from the output; the copies' terms summed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from zil_conditions import BROKEN, BROKEN_IDS

MODELS = Path(__file__).resolve().parents[1] / "models"
NAMES = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")


def explicit_bptt(net, x, y):
    """Forward h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h), yhat = W_hy h_T + b_y; then BPTT."""
    batch, steps, _ = x.shape
    hs = [np.zeros((batch, net.n_hidden))]
    for t in range(steps):
        hs.append(np.tanh(x[:, t] @ net.W_xh.T + hs[-1] @ net.W_hh.T + net.b_h))
    out = hs[-1] @ net.W_hy.T + net.b_y
    d_out = (out - y) / batch
    grads = {"W_hy": d_out.T @ hs[-1], "b_y": d_out.sum(axis=0), "W_xh": 0.0, "W_hh": 0.0, "b_h": 0.0}
    dh = d_out @ net.W_hy
    for t in range(steps, 0, -1):
        dz = dh * (1.0 - hs[t] ** 2)
        grads["W_xh"] = grads["W_xh"] + dz.T @ x[:, t - 1]
        grads["W_hh"] = grads["W_hh"] + dz.T @ hs[t - 1]
        grads["b_h"] = grads["b_h"] + dz.sum(axis=0)
        dh = dz @ net.W_hh
    return out, grads


def numerical_gradient(net, x, y, h=1e-4):
    """Central finite differences of ``net.loss``, five-point stencil (error O(h^4) + rounding/h)."""
    grads = np.zeros_like(net.params)
    for i in range(net.params.size):
        old = net.params[i]
        values = []
        for step in (-2, -1, 1, 2):
            net.params[i] = old + step * h
            values.append(net.loss(x, y))
        net.params[i] = old
        grads[i] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return net.grad_views(grads)


def rel_error(a, b):
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / scale)


def dict_rel_error(a, b):
    num = max(float(np.max(np.abs(a[k] - b[k]))) for k in NAMES)
    den = max(float(np.max(np.abs(b[k]))) for k in NAMES)
    return num / den


@st.composite
def random_rnns(draw, max_steps=8):
    n_in, n_hidden, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    activation = draw(st.sampled_from(["tanh", "sigmoid", "leaky_relu"]))
    net = ns.rnn(n_in, n_hidden, n_out, activation=activation, seed=draw(st.integers(0, 1000)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    batch, steps = draw(st.integers(1, 3)), draw(st.integers(1, max_steps))
    return net, rng.normal(size=(batch, steps, n_in)), rng.normal(size=(batch, n_out))


def test_forward_and_bp_equal_explicit_bptt():
    net = ns.rnn(3, 5, 2, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 2))
    out, grads = explicit_bptt(net, x, y)
    np.testing.assert_allclose(net.forward(x), out, atol=1e-14)
    bp = ns.variant("bp").gradients(net, x, y)
    assert set(bp) == set(NAMES)
    for name in NAMES:
        assert bp[name].shape == getattr(net, name).shape
        np.testing.assert_allclose(bp[name], grads[name], atol=1e-14)
    assert net.W_xh.shape == (5, 3) and net.W_hh.shape == (5, 5) and net.W_hy.shape == (2, 5)


@settings(max_examples=30, deadline=None)
@given(random_rnns())
def test_zil_equals_bp_equals_finite_differences_on_random_rnns(case):
    net, x, y = case
    bp = ns.variant("bp").gradients(net, x, y)
    zil = ns.variant("zil").gradients(net, x, y)
    assert ns.variant("zil").n_ticks(net) == x.shape[1]  # L - 1 = T ticks
    # relative 1e-12, with an absolute floor of rounding for gradients that are themselves tiny
    difference = max(float(np.max(np.abs(zil[k] - bp[k]))) for k in NAMES)
    assert difference <= 1e-12 * max(float(np.max(np.abs(bp[k]))) for k in NAMES) + 1e-15
    if net.activation != "leaky_relu":  # finite differences are meaningless across a kink
        fd = numerical_gradient(net, x, y)
        assert dict_rel_error(bp, fd) < 1e-8
        assert dict_rel_error(zil, fd) < 1e-8


@pytest.mark.parametrize("steps", [11, 16])
def test_zil_equals_bp_on_unrolled_graphs_deeper_than_ten_ticks(steps):
    net = ns.rnn(2, 4, 3, seed=steps)
    rng = np.random.default_rng(steps)
    x, y = rng.normal(size=(3, steps, 2)), rng.normal(size=(3, 3))
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y, record=("energy", "errors"))
    assert trace.ticks == steps > 10
    bp = ns.variant("bp").gradients(net, x, y)
    assert dict_rel_error(trace.grads, bp) < 1e-12
    assert dict_rel_error(bp, numerical_gradient(net, x, y)) < 1e-8
    # Lemma 1 on the unrolled graph: e_t first non-zero at tick L - t (its distance from the output).
    L = steps + 1
    for t in range(1, L + 1):
        assert np.all(trace.errors[t][:L - t] == 0.0)
        assert np.any(trace.errors[t][L - t] != 0.0)


@pytest.mark.parametrize("broken", BROKEN, ids=BROKEN_IDS)
def test_breaking_one_zil_condition_diverges_from_bp(broken):
    net = ns.rnn(4, 6, 3, seed=3)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(5, 6, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    bp = ns.variant("bp").gradients(net, x, y)
    exact = dict_rel_error(ns.variant("zil").gradients(net, x, y), bp)
    off = dict_rel_error(broken().gradients(net, x, y), bp)
    print(f"{broken.__name__}: relative divergence from BP {off:.3e} (exact Z-IL {exact:.1e})")
    assert exact < 1e-12
    assert off > 1e-5


def test_il_runs_and_fused_equals_simulator():
    net = ns.rnn(3, 4, 2, seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 2))
    variant = ns.variant("il", T=12, gamma=0.2)
    fused = variant.gradients(net, x, y)
    trace = ns.Simulator(net, variant).run(x, y, record=("values", "errors"))
    for name in NAMES:
        np.testing.assert_array_equal(fused[name], trace.grads[name])
    assert trace.values[0].shape == (13, 2, 5, 3) and trace.values[3].shape == (13, 2, 4)
    with ns.counting.count() as counter:
        ns.variant("bp").gradients(net, x, y)
    assert counter.macs > 0


def test_float32_close_to_float64():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 2))
    g64 = ns.variant("zil").gradients(ns.rnn(2, 3, 2, seed=1), x, y)
    g32 = ns.variant("zil").gradients(ns.rnn(2, 3, 2, seed=1, dtype="float32"), x, y)
    assert g32["W_hh"].dtype == np.float32
    assert dict_rel_error({k: v.astype(np.float64) for k, v in g32.items()}, g64) < 1e-4


def test_bad_input_names_the_layer():
    net = ns.rnn(3, 4, 2)
    with pytest.raises(ValueError, match="sequence of length 0"):
        ns.variant("zil").gradients(net, np.zeros((2, 0, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"rnn \(Elman RNN, n_in=3\): x must have shape \(B, T, 3\)"):
        net.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"rnn \(Elman RNN, n_in=3\)"):
        net.forward(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="n_hidden must be >= 1"):
        ns.rnn(3, 0, 2)
    with pytest.raises(ValueError, match="y has 1 rows"):
        ns.variant("bp").gradients(net, np.zeros((2, 5, 3)), np.zeros((1, 2)))


def test_copy_save_load(tmp_path):
    net = ns.rnn(3, 4, 2, seed=7)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    np.testing.assert_array_equal(net.copy().forward(x), net.forward(x))
    net.save(tmp_path / "rnn.npz")
    np.testing.assert_array_equal(ns.RNN.load(tmp_path / "rnn.npz").forward(x), net.forward(x))
    np.testing.assert_array_equal(ns.Network.load(tmp_path / "rnn.npz").forward(x), net.forward(x))


def test_rnn_reads_digits_row_by_row_zil_and_bp_identical_accuracy():
    """models/rnn_digits.toml: 8 steps of 8 pixels; Z-IL and BP epoch by epoch to 4 decimals."""
    from neurosim import config as configs

    config = configs.load(MODELS / "rnn_digits.toml")
    accuracy = {}
    for name in ("zil", "bp"):
        net, _, optimizer, data, train_kwargs = configs.build(configs.override(config, f'variant.name="{name}"'))
        history = ns.train(net, ns.variant(name), data, optimizer=optimizer, progress=False, **train_kwargs)
        assert net.seq_len == 8 and history.ticks == 8  # L - 1 = T ticks for both
        accuracy[name] = [round(a, 4) for a in history.test_accuracy]
    print(f"RNN digits test accuracy: zil {accuracy['zil'][-1]:.4f}, bp {accuracy['bp'][-1]:.4f}")
    assert accuracy["zil"] == accuracy["bp"]
    assert accuracy["zil"][-1] >= 0.90


def test_rnn_config_runs_with_the_cli(tmp_path):
    from neurosim import cli

    code = cli.main(["train", str(MODELS / "rnn_digits.toml"), "--out", str(tmp_path), "--quiet",
                     "--set", "train.epochs=1"])
    assert code == 0
    assert ns.RNN.load(tmp_path / "weights.npz").W_hh.shape == (64, 64)
    with pytest.raises(ValueError, match="not a whole number of steps"):
        ns.train(ns.rnn(5, 4, 10), ns.variant("bp"), ns.datasets.digits(), epochs=1, progress=False)


def test_dense_only_variants_reject_rnns_by_name():
    net = ns.rnn(3, 4, 2)
    with pytest.raises(ValueError, match="copi.*runs on dense networks.*rnn"):
        ns.variant("copi").compute(net, np.zeros((2, 5, 3)), np.zeros((2, 2)))


def test_divergence_is_reported_with_its_tick():
    net = ns.rnn(2, 3, 2, seed=0, activation="linear")
    rng = np.random.default_rng(0)
    with pytest.raises(ns.DivergenceError, match="gamma=10.0 may be too large") as info:
        ns.variant("il", T=300, gamma=10.0).gradients(net, rng.normal(size=(2, 4, 2)), 10 * np.ones((2, 2)))
    assert info.value.tick is not None and info.value.tick >= 1
