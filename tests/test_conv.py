"""Convolutional circuits: kernels, layers, and Z-IL = BP = finite differences on random CNNs.

Oracles (pcx style): the NumPy references of the convolution kernels (``conv_reference``); an
explicit-loop convolution written here (no neurosim code); adjointness of every linear map and its
transpose; central finite differences of ``net.loss``; BP for Z-IL. Salvatori et al. 2021 (arXiv
2103.03725): Z-IL reproduces BP exactly on CNNs, and breaking any one of its conditions diverges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.kernels import conv, conv_reference
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten
from zil_conditions import BROKEN, BROKEN_IDS

MODELS = Path(__file__).resolve().parents[1] / "models"
EXAMPLES = 25
SMOOTH = ("tanh", "sigmoid", "linear")


# --------------------------------------------------------------------------- helpers
def explicit_conv2d(x, weight, bias, stride, padding):
    """Cross-correlation by explicit loops over a zero-padded copy (the torch.nn.Conv2d definition)."""
    batch, n_in, height, width = x.shape
    n_out, _, kh, kw = weight.shape
    xp = np.zeros((batch, n_in, height + 2 * padding, width + 2 * padding))
    xp[:, :, padding:padding + height, padding:padding + width] = x
    ho = (height + 2 * padding - kh) // stride + 1
    wo = (width + 2 * padding - kw) // stride + 1
    out = np.zeros((batch, n_out, ho, wo))
    for b in range(batch):
        for o in range(n_out):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[b, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[b, o, i, j] = np.sum(patch * weight[o]) + bias[o]
    return out


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
    return grads


def flat(grad_list):
    return np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grad_list])


def rel_error(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@st.composite
def conv_geometry(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    height = draw(st.integers(max(1, kh - 2 * padding), 9))
    width = draw(st.integers(max(1, kw - 2 * padding), 9))
    return dict(batch=draw(st.integers(1, 3)), n_in=draw(st.integers(1, 3)), n_out=draw(st.integers(1, 4)),
                kh=kh, kw=kw, stride=stride, padding=padding, height=height, width=width,
                seed=draw(st.integers(0, 2 ** 31)))


def _arrays(g, dtype):
    rng = np.random.default_rng(g["seed"])
    x = rng.normal(size=(g["batch"], g["n_in"], g["height"], g["width"])).astype(dtype)
    w = rng.normal(size=(g["n_out"], g["n_in"], g["kh"], g["kw"])).astype(dtype)
    b = rng.normal(size=g["n_out"]).astype(dtype)
    ho = conv.out_size(g["height"], g["kh"], g["stride"], g["padding"])
    wo = conv.out_size(g["width"], g["kw"], g["stride"], g["padding"])
    e = rng.normal(size=(g["batch"], g["n_out"], ho, wo)).astype(dtype)
    return x, w, b, e


TOL = {"float64": 1e-12, "float32": 1e-4}


# --------------------------------------------------------------------------- kernels vs references
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv_kernels_match_numpy_references(dtype):
    @settings(max_examples=EXAMPLES * 2, deadline=None)
    @given(conv_geometry())
    def check(g):
        x, w, b, e = _arrays(g, dtype)
        s, p = g["stride"], g["padding"]
        out = np.empty_like(e)
        conv.conv2d_forward(x, w, b, s, p, out)
        ref = conv_reference.conv2d_forward(x, w, b, s, p)
        scale = max(1.0, float(np.abs(ref).max()))
        assert np.max(np.abs(out - ref)) <= TOL[dtype] * scale
        back = np.empty_like(x)
        conv.conv2d_transposed(e, w, s, p, back)
        ref = conv_reference.conv2d_transposed(e, w, s, p, x.shape[2:])
        assert np.max(np.abs(back - ref), initial=0.0) <= TOL[dtype] * max(1.0, float(np.abs(ref).max()))
        gw, gb = np.empty_like(w), np.empty_like(b)
        conv.conv2d_hebbian(e, x, s, p, gw, gb)
        rw, rb = conv_reference.conv2d_hebbian(e, x, (g["kh"], g["kw"]), s, p)
        assert np.max(np.abs(gw - rw)) <= TOL[dtype] * max(1.0, float(np.abs(rw).max()))
        assert np.max(np.abs(gb - rb)) <= TOL[dtype] * max(1.0, float(np.abs(rb).max()))

    check()


@settings(max_examples=EXAMPLES, deadline=None)
@given(conv_geometry())
def test_conv2d_layer_forward_equals_explicit_loops(g):
    x, w, b, _ = _arrays(g, "float64")
    layer = Conv2d(g["n_in"], g["n_out"], (g["kh"], g["kw"]), stride=g["stride"], padding=g["padding"])
    layer.bind(w, b)
    layer.build(x.shape[1:])
    np.testing.assert_allclose(layer.forward(x), explicit_conv2d(x, w, b, g["stride"], g["padding"]),
                               rtol=0, atol=1e-12 * max(1.0, float(np.abs(w).sum())))
    assert layer.out_shape == layer.forward(x).shape[1:]


@settings(max_examples=EXAMPLES, deadline=None)
@given(conv_geometry())
def test_feedback_and_hebbian_are_the_vjps_of_forward(g):
    """<e, W*x> = <W^T e, x> and <e, dmu/dW . V> = <hebbian(e, x), V>: adjoint pairs, no reference."""
    x, w, b, e = _arrays(g, "float64")
    layer = Conv2d(g["n_in"], g["n_out"], (g["kh"], g["kw"]), stride=g["stride"], padding=g["padding"])
    layer.bind(w, np.zeros_like(b))
    layer.build(x.shape[1:])
    lhs = np.sum(e * layer.forward(x))
    assert abs(lhs - np.sum(layer.feedback(e) * x)) <= 1e-10 * max(1.0, abs(lhs))
    grad_weight, grad_bias = layer.hebbian(e, x)
    assert abs(lhs - np.sum(grad_weight * w)) <= 1e-10 * max(1.0, abs(lhs))
    np.testing.assert_allclose(grad_bias, e.sum(axis=(0, 2, 3)), atol=1e-12)


@pytest.mark.parametrize("k,shape", [(2, (3, 8, 8)), (2, (2, 5, 7)), (3, (1, 7, 9)), (1, (2, 3, 3))])
def test_pool_and_flatten_transposes_are_adjoint(k, shape):
    rng = np.random.default_rng(k)
    for layer in (AvgPool2d(k), Flatten()):
        out_shape = layer.build(shape)
        x = rng.normal(size=(2,) + shape)
        g = rng.normal(size=(2,) + out_shape)
        fx = layer.forward(x)
        assert fx.shape == g.shape
        assert abs(np.sum(g * fx) - np.sum(layer.transposed(g) * x)) < 1e-12
    pooled = AvgPool2d(k).forward(np.ones((1,) + shape))
    np.testing.assert_allclose(pooled, 1.0)


def test_conv_macs_count_only_taps_inside_the_input():
    layer = Conv2d(2, 3, 3, stride=1, padding=1)
    layer.build((2, 4, 4))
    # Per axis: output positions 0..3 see 2, 3, 3, 2 taps -> 10; both axes 10 * 10 = 100.
    assert layer.macs(5) == 5 * 3 * 2 * 100


# --------------------------------------------------------------------------- networks
def small_cnn(seed=0, activation="tanh", dtype="float64"):
    return ns.Network([Conv2d(1, 3, 3, padding=1), AvgPool2d(2), Conv2d(3, 4, 3, stride=2, padding=1),
                       Flatten(), Dense(16, 5)], activation=activation, input_shape=(1, 8, 8), seed=seed,
                      dtype=dtype)


def test_network_is_the_sequential_with_activation_after_each_parametrised_layer():
    net = small_cnn(seed=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 8, 8))
    (w1, w2, w3), (b1, b2, b3) = net.weights, net.biases
    h = np.tanh(explicit_conv2d(x, w1, b1, 1, 1))
    h = h.reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    h = np.tanh(explicit_conv2d(h, w2, b2, 2, 1)).reshape(2, -1)
    np.testing.assert_allclose(net.forward(x), h @ w3.T + b3, atol=1e-13)
    assert not net.is_dense and net.n_layers == 3
    assert [w.shape for w in net.weights] == [(3, 1, 3, 3), (4, 3, 3, 3), (5, 16)]
    # PyTorch default init bounds: 1/sqrt(fan_in), fan_in = in_ch * kh * kw.
    assert np.abs(w1).max() <= 1 / 3 and np.abs(w2).max() <= 1 / np.sqrt(27)


@st.composite
def random_cnns(draw):
    """1-3 conv layers (stride 1-2, padding 0-1, optional 2x2 pooling), flatten, dense head."""
    channels = draw(st.integers(1, 2))
    size = draw(st.integers(5, 9))
    layers, shape = [], (channels, size, size)
    for _ in range(draw(st.integers(1, 3))):
        kernel = draw(st.integers(1, 3))
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        if kernel > shape[1] + 2 * padding:
            break
        out_ch = draw(st.integers(1, 3))
        layer = Conv2d(shape[0], out_ch, kernel, stride=stride, padding=padding)
        layers.append(layer)
        shape = (out_ch,) + layer.output_hw(*shape[1:])
        if shape[1] >= 2 and draw(st.booleans()):
            layers.append(AvgPool2d(2))
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
    if not layers:
        layers.append(Conv2d(channels, 2, 1))
        shape = (2, size, size)
    n_out = draw(st.integers(1, 4))
    layers += [Flatten(), Dense(int(np.prod(shape)), n_out)]
    activation = draw(st.sampled_from(["tanh", "sigmoid", "linear", "leaky_relu"]))
    net = ns.Network(layers, activation=activation, input_shape=(channels, size, size),
                     seed=draw(st.integers(0, 1000)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    batch = draw(st.integers(1, 4))
    x = rng.normal(size=(batch, channels, size, size))
    y = rng.normal(size=(batch, n_out))
    return net, x, y


@settings(max_examples=30, deadline=None)
@given(random_cnns())
def test_zil_equals_bp_equals_finite_differences_on_random_cnns(case):
    net, x, y = case
    bp = ns.variant("bp").gradients(net, x, y)
    zil = ns.variant("zil").gradients(net, x, y)
    assert len(zil) == net.n_layers
    for (dW, db), W, b in zip(zil, net.weights, net.biases):
        assert dW.shape == W.shape and db.shape == b.shape
    assert rel_error(flat(zil), flat(bp)) < 1e-12
    if net.activation in SMOOTH:  # finite differences are meaningless across a kink
        fd = numerical_gradient(net, x, y)
        assert rel_error(flat(bp), fd) < 1e-8
        assert rel_error(flat(zil), fd) < 1e-8


def test_zil_error_neurons_are_bp_deltas_on_their_tick():
    """e_l(t = L - l) = -d_l (BP's delta) feature map by feature map; e_l = 0 before that tick."""
    net = small_cnn(seed=5)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 1, 8, 8)), rng.normal(size=(3, 5))
    trace = ns.Simulator(net, ns.variant("zil")).run(x, y, record=("errors",))
    bp = ns.Simulator(net, ns.variant("bp")).run(x, y, record=("errors",))  # e_l = -d_l on tick L - l
    L = net.n_layers
    for l in range(1, L + 1):
        assert trace.errors[l].shape == (L, 3) + net.shapes[l]
        np.testing.assert_allclose(trace.errors[l][L - l], bp.errors[l][L - l], atol=1e-14)
        assert np.any(bp.errors[l][L - l] != 0.0)
        assert np.all(trace.errors[l][:L - l] == 0.0)


@pytest.mark.parametrize("broken", BROKEN, ids=BROKEN_IDS)
def test_breaking_one_zil_condition_diverges_from_bp(broken):
    net = small_cnn(seed=2)
    rng = np.random.default_rng(4)
    x, y = rng.random(size=(8, 1, 8, 8)), np.eye(5)[rng.integers(0, 5, 8)]
    bp = flat(ns.variant("bp").gradients(net, x, y))
    exact = rel_error(flat(ns.variant("zil").gradients(net, x, y)), bp)
    off = rel_error(flat(broken().gradients(net, x, y)), bp)
    print(f"{broken.__name__}: relative divergence from BP {off:.3e} (exact Z-IL {exact:.1e})")
    assert exact < 1e-12
    assert off > 1e-5  # seven orders of magnitude above rounding


def test_fused_relax_equals_tick_by_tick_simulator():
    net = small_cnn(seed=7, activation="sigmoid")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 1, 8, 8)), rng.normal(size=(4, 5))
    for variant in (ns.variant("il", T=6, gamma=0.2), ns.variant("zil"), ns.variant("bp")):
        fused = flat(variant.gradients(net, x, y))
        trace = ns.Simulator(net, variant).run(x, y, record=("energy", "values", "predictions"))
        np.testing.assert_array_equal(fused, flat(trace.grads))
        assert trace.values[1].shape == (variant.n_ticks(net) + 1, 4, 3, 8, 8)
    step = ns.variant("il", T=6, gamma=0.2).compute(net, x, y)
    assert np.all(np.diff(step.energies) <= 1e-12)  # small gamma: the energy descends


def test_il_bp_zil_float32_and_counting_run_on_cnns():
    net = small_cnn(seed=1, dtype="float32")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 5))
    net64 = small_cnn(seed=1)
    ref = flat(ns.variant("bp").gradients(net64, x, y))
    for name in ("bp", "zil"):
        with ns.counting.count() as counter:
            grads = flat(ns.variant(name).gradients(net, x, y))
        assert grads.dtype == np.float32
        assert rel_error(grads.astype(np.float64), ref) < 1e-4
        assert counter.macs > 0
    with ns.counting.count() as counter:
        ns.variant("bp").gradients(net64, x, y)
    conv1 = net64.layers[0].macs(2)
    assert counter.by_kernel()["feedforward"]["macs"] == sum(net64.layer_macs(l, 2) for l in (1, 2, 3))
    assert conv1 == 2 * 3 * 1 * 8 * 8 * 9 - 2 * 3 * (4 * 8 * 3 - 4)  # 3x3 taps minus the padded ones


def test_copy_save_load_round_trip(tmp_path):
    net = small_cnn(seed=4)
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8))
    clone = net.copy()
    np.testing.assert_array_equal(clone.forward(x), net.forward(x))
    net.save(tmp_path / "cnn.npz")
    loaded = ns.Network.load(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    assert repr(loaded) == repr(net)


# --------------------------------------------------------------------------- bad input
def test_bad_architectures_name_the_layer():
    with pytest.raises(ValueError, match=r"layers\[2\] \(Conv2d\): kernel 5x5 larger than input 4x4"):
        ns.Network([Conv2d(1, 2, 3, padding=1), AvgPool2d(2), Conv2d(2, 2, 5), Flatten(), Dense(2, 1)],
                   input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv2d\): expects 1 input channels, got 3"):
        ns.Network([Conv2d(1, 2, 3), Flatten(), Dense(72, 1)], input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"layers\[1\] \(Dense\).*Flatten"):
        ns.Network([Conv2d(1, 2, 3), Dense(72, 1)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"layers\[1\] \(AvgPool2d\).*last parametrised"):
        ns.Network([Conv2d(1, 2, 3), AvgPool2d(2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="input_shape is required"):
        ns.Network([Conv2d(1, 2, 3), Flatten(), Dense(72, 1)])
    with pytest.raises(ValueError, match=r"layers\[1\] \(AvgPool2d\): window 4x4 larger"):
        ns.Network([Conv2d(1, 2, 3), AvgPool2d(4), Flatten(), Dense(2, 1)], input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        Conv2d(1, 2, 3, stride=0)
    with pytest.raises(TypeError, match=r"layers\[0\] must be a neurosim layer"):
        ns.Network(["conv"], input_shape=(1, 8, 8))


def test_bad_inputs_name_the_layer():
    net = small_cnn()
    y = np.zeros((2, 5))
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv2d\): x must have shape \(B, 1, 8, 8\)"):
        ns.variant("zil").gradients(net, np.zeros((2, 64)), y)
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv2d\).*3 channels, expected 1"):
        ns.variant("bp").gradients(net, np.zeros((2, 3, 8, 8)), y)
    with pytest.raises(ValueError, match="NaN"):
        net.forward(np.full((2, 1, 8, 8), np.nan))


# --------------------------------------------------------------------------- training and configs
def test_cnn_on_digits_zil_and_bp_reach_95_percent_with_identical_accuracy():
    """models/cnn_digits.toml: Z-IL and BP from the same seeds, epoch by epoch to 4 decimals."""
    from neurosim import config as configs

    config = configs.load(MODELS / "cnn_digits.toml")
    accuracy = {}
    for name in ("zil", "bp"):
        net, _, optimizer, data, train_kwargs = configs.build(configs.override(config, f'variant.name="{name}"'))
        history = ns.train(net, ns.variant(name), data, optimizer=optimizer, progress=False, **train_kwargs)
        accuracy[name] = [round(a, 4) for a in history.test_accuracy]
    print(f"CNN digits test accuracy: zil {accuracy['zil'][-1]:.4f}, bp {accuracy['bp'][-1]:.4f}")
    assert accuracy["zil"] == accuracy["bp"]
    assert accuracy["zil"][-1] >= 0.95


def test_cnn_config_runs_with_the_cli(tmp_path, capsys):
    from neurosim import cli

    code = cli.main(["train", str(MODELS / "cnn_digits.toml"), "--out", str(tmp_path), "--quiet",
                     "--set", "train.epochs=1", "--set", 'variant.name="bp"'])
    assert code == 0
    assert (tmp_path / "results.json").exists() and (tmp_path / "weights.npz").exists()
    loaded = ns.Network.load(tmp_path / "weights.npz")
    assert loaded.input_shape == (1, 8, 8) and loaded.n_layers == 3
    assert "final test accuracy" in capsys.readouterr().out


def test_bad_cnn_config_names_the_key():
    from neurosim import config as configs

    config = configs.load(MODELS / "cnn_digits.toml")
    with pytest.raises(ValueError, match="model.layers is required"):
        configs.validate({**config, "model": {"kind": "cnn", "input_shape": [1, 8, 8]}})
    with pytest.raises(ValueError, match="model.kind must be one of"):
        configs.override(config, 'model.kind="transformer"')
    bad = configs.override(config, "model.input_shape=[2, 8, 8]")
    with pytest.raises(ValueError, match=r"config \[model\]: layers\[0\] \(Conv2d\): expects 1 input channels"):
        configs.build(bad)


def test_fpa_runs_unchanged_on_cnns_and_rnns():
    """FPA with gamma = 1 and T >= L - 1 ticks is algorithmically BP (Rosenbaum 2022)."""
    net = small_cnn(seed=6)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 1, 8, 8)), rng.normal(size=(3, 5))
    bp = flat(ns.variant("bp").gradients(net, x, y))
    fpa = ns.variant("fpa")
    assert rel_error(flat(fpa.gradients(net, x, y)), bp) < 1e-12
    assert rel_error(flat(ns.Simulator(net, fpa).run(x, y).grads), bp) < 1e-12
    rnn = ns.rnn(3, 4, 2, seed=1)
    xs = rng.normal(size=(2, 5, 3))
    ys = rng.normal(size=(2, 2))
    g_bp, g_fpa = ns.variant("bp").gradients(rnn, xs, ys), fpa.gradients(rnn, xs, ys)
    for name in g_bp:
        np.testing.assert_allclose(g_fpa[name], g_bp[name], rtol=0, atol=1e-14)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "mq"])
def test_optimisers_step_cnns_and_rnns_layer_by_layer(optimizer):
    """Every optimiser acts on the flat parameters; MQ keeps one scalar per weight matrix + bias."""
    rng = np.random.default_rng(0)
    for net, x, y in ((small_cnn(seed=0), rng.random((4, 1, 8, 8)), np.eye(5)[[0, 1, 2, 3]]),
                      (ns.rnn(3, 4, 2, seed=0), rng.random((4, 5, 3)), np.eye(2)[[0, 1, 0, 1]])):
        opt = ns.optim.make(optimizer)
        before = net.loss(x, y)
        for _ in range(30):
            opt.step(net, ns.variant("zil").compute(net, x, y).grads)
        assert net.loss(x, y) < before
        groups = net.param_groups()
        assert groups[0][0] == 0 and groups[-1][1] == net.params.size
        assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
        if optimizer == "mq":
            assert len(opt.v) == len(groups) == 3


def test_conv_output_layer_and_single_layer_networks():
    """A conv layer as the (linear) readout takes feature-map targets; one-layer circuits need no tick."""
    rng = np.random.default_rng(8)
    net = ns.Network([Conv2d(2, 3, 3, padding=1), Conv2d(3, 2, 2, stride=2)], input_shape=(2, 6, 6), seed=3)
    x, y = rng.normal(size=(3, 2, 6, 6)), rng.normal(size=(3, 2, 3, 3))
    assert net.forward(x).shape == (3, 2, 3, 3)
    bp = flat(ns.variant("bp").gradients(net, x, y))
    assert rel_error(flat(ns.variant("zil").gradients(net, x, y)), bp) < 1e-12
    assert rel_error(flat(ns.variant("bp").gradients(net, x, y.reshape(3, -1))), bp) == 0.0
    assert rel_error(bp, numerical_gradient(net, x, y)) < 1e-8
    single = ns.Network([Flatten(), Dense(72, 4)], input_shape=(2, 6, 6), seed=1)
    y4 = rng.normal(size=(3, 4))
    bp1 = flat(ns.variant("bp").gradients(single, x, y4))
    assert ns.variant("zil").n_ticks(single) == 0
    for variant in (ns.variant("zil"), ns.variant("il", T=3, gamma=0.1), ns.variant("fpa")):
        assert rel_error(flat(variant.gradients(single, x, y4)), bp1) < 1e-12


def test_divergence_on_a_cnn_is_reported():
    net = small_cnn(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 1, 8, 8)), 1e3 * np.ones((2, 5))
    for run in (lambda v: v.gradients(net, x, y), lambda v: ns.Simulator(net, v).run(x, y)):
        with pytest.raises(ns.DivergenceError, match="non-finite") as info:
            run(ns.variant("il", T=300, gamma=40.0))
        assert info.value.tick >= 1


def test_counts_agree_between_fused_and_tick_by_tick_paths():
    net = small_cnn(seed=3)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 5))
    for variant in (ns.variant("zil"), ns.variant("il", T=5, gamma=0.1)):
        # zil.compute runs the wavefront; IL's fused kernel under Z-IL's schedule is its full circuit.
        with ns.counting.count() as fused:
            variant.compute_with(net, x, y, variant.schedule(net))
        with ns.counting.count() as ticked:
            ns.Simulator(net, variant).run(x, y)
        assert fused.by_kernel() == ticked.by_kernel()
        assert fused.ticks == variant.n_ticks(net)
    with ns.counting.count() as wavefront:
        ns.variant("zil").gradients(net, x, y)
    with ns.counting.count() as bp:
        ns.variant("bp").gradients(net, x, y)
    assert (wavefront.macs, wavefront.critical_path) == (bp.macs, bp.critical_path)
    assert wavefront.ticks == net.n_layers - 1
