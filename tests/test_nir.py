"""NIR export and import (neurosim.interop.nir).

Oracles: the network's own ``forward`` (a round trip must give bit-identical weights and outputs); a
NumPy interpreter of the NIR graph written here from the NIR primitives' definitions (no neurosim
code), so the file is checked to *mean* the network's function, not only to load back; ``nir.read``
with NIR's own type checks, for the file's structure.
"""
from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.config import build_model
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten

nir = pytest.importorskip("nir")
from neurosim.interop import nir as ns_nir  # noqa: E402  (after the skip: needs the nir package)

MODELS = Path(__file__).resolve().parents[1] / "models"
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "leaky_relu", "leaky_relu_0.1")
PHI = {  # written from the definitions, independent of neurosim.activations
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "leaky_relu_0.1": lambda x: np.where(x > 0, x, 0.1 * x),
}


# --------------------------------------------------------------------------- helpers
def digits_cnn(dtype="float64", activation=None):
    with open(MODELS / "cnn_digits.toml", "rb") as handle:
        model = tomllib.load(handle)["model"]
    model["dtype"] = dtype
    if activation is not None:
        model["activation"] = activation
    return build_model(model)


def inputs(net, batch=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch,) + tuple(net.input_shape)).astype(net.dtype)


def export_and_load(net, directory, name="net.nir", **kwargs):
    path = Path(directory) / name
    kwargs.setdefault("activation_in_metadata", net.activation != "linear")
    ns_nir.export(net, path, **kwargs)
    return ns_nir.load(path, dtype=net.dtype)


def assert_same_network(loaded, net):
    assert type(loaded) is type(net)
    assert loaded.activation == net.activation
    assert loaded.dtype == net.dtype
    assert loaded.input_shape == net.input_shape
    assert loaded.is_dense == net.is_dense
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in net.layers]
    assert len(loaded.weights) == len(net.weights)
    for got, want in zip(loaded.weights, net.weights):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for got, want in zip(loaded.biases, net.biases):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    x = inputs(net)
    assert np.array_equal(loaded.forward(x), net.forward(x))


def conv2d(x, weight, bias, stride, padding):
    """Cross-correlation (torch.nn.Conv2d) of a batch ``(B, C, H, W)``."""
    padding = (0, 0) if isinstance(padding, str) and padding == "valid" else tuple(padding)
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    kh, kw = weight.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride[0], ::stride[1]]
    return np.einsum("bchwuv,ocuv->bohw", windows, weight) + bias[None, :, None, None]


def run_graph(graph, x, use_metadata=True):
    """Evaluate a chain-shaped NIR graph on a batch; apply ``neurosim_activation`` metadata if asked."""
    following = dict(graph.edges)
    name = next(key for key, node in graph.nodes.items() if isinstance(node, nir.Input))
    while not isinstance(graph.nodes[name], nir.Output):
        name = following[name]
        node = graph.nodes[name]
        if isinstance(node, nir.Affine):
            x = x @ node.weight.T + node.bias
        elif isinstance(node, nir.Linear):
            x = x @ node.weight.T
        elif isinstance(node, nir.Conv2d):
            x = conv2d(x, node.weight, node.bias, tuple(node.stride), node.padding)
        elif isinstance(node, nir.AvgPool2d):
            k = tuple(int(n) for n in node.kernel_size)
            batch, channels, height, width = x.shape
            ho, wo = height // k[0], width // k[1]
            x = x[:, :, :ho * k[0], :wo * k[1]].reshape(batch, channels, ho, k[0], wo, k[1]).mean((3, 5))
        elif isinstance(node, nir.Flatten):
            x = x.reshape(x.shape[0], -1)
        elif not isinstance(node, nir.Output):
            raise AssertionError(f"unexpected node {name} {type(node).__name__}")
        mark = node.metadata.get("neurosim_activation") if use_metadata else None
        if mark is not None:
            x = PHI[mark](x)
    return x


def affine(n_in, n_out, seed=0, **metadata):
    rng = np.random.default_rng(seed)
    return nir.Affine(weight=rng.normal(size=(n_out, n_in)), bias=rng.normal(size=n_out), metadata=metadata)


def chain_graph(*nodes, input_shape, metadata=None):
    """``Input -> nodes... -> Output`` named ``n0, n1, ...``, without NIR's type check (so that
    inconsistent graphs can be built)."""
    named = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    named.update({f"n{i}": node for i, node in enumerate(nodes)})
    out = nodes[-1].output_type["output"] if nodes[-1].output_type else None
    named["output"] = nir.Output(output_type={"output": np.array(out) if out is not None else np.array([1])})
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names, names[1:])), metadata=metadata or {},
                        type_check=False)


def write_graph(graph, directory, name="graph.nir"):
    path = Path(directory) / name
    nir.write(path, graph)
    return path


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes", [[3, 2], [4, 6, 3], [8, 16, 16, 10], [1, 1, 1]], ids=str)
def test_mlp_round_trip_is_exact(tmp_path, sizes, activation, dtype):
    net = ns.mlp(sizes, activation=activation, seed=3, dtype=dtype)
    assert_same_network(export_and_load(net, tmp_path), net)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_digits_cnn_round_trip_is_exact(tmp_path, dtype):
    net = digits_cnn(dtype)
    assert_same_network(export_and_load(net, tmp_path), net)


@pytest.mark.parametrize("layers, input_shape", [
    ([Conv2d(2, 3, 3, stride=2, padding=1), Conv2d(3, 4, 2)], (2, 7, 6)),  # strided, ends in a conv
    ([AvgPool2d(3), Conv2d(2, 3, 2), Flatten(), Dense(3, 2)], (2, 7, 8)),  # pooling floors 7x8 to 2x2
], ids=["strided", "pool-first"])
def test_other_cnns_round_trip_and_compute_the_same_function(tmp_path, layers, input_shape):
    net = ns.Network(layers, input_shape=input_shape, activation="relu", seed=2)
    assert_same_network(export_and_load(net, tmp_path), net)
    graph = nir.read(tmp_path / "net.nir")
    x = inputs(net)
    np.testing.assert_allclose(run_graph(graph, x), net.forward(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("input_shape", [(6,), (2, 3)], ids=str)
def test_flatten_first_network_round_trip(tmp_path, input_shape):
    net = ns.Network([Flatten(), Dense(6, 4), Dense(4, 2)], input_shape=input_shape, activation="tanh")
    assert_same_network(export_and_load(net, tmp_path), net)


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
       activation=st.sampled_from(ACTIVATIONS), dtype=st.sampled_from(["float64", "float32"]),
       seed=st.integers(0, 2**16))
def test_random_mlps_round_trip(sizes, activation, dtype, seed):
    net = ns.mlp(sizes, activation=activation, seed=seed, dtype=dtype)
    with tempfile.TemporaryDirectory() as directory:
        assert_same_network(export_and_load(net, directory), net)


def test_float64_file_loads_as_float32_by_rounding(tmp_path):
    net = ns.mlp([4, 5, 2], activation="tanh")
    ns_nir.export(net, tmp_path / "net.nir", activation_in_metadata=True)
    loaded = ns_nir.load(tmp_path / "net.nir", dtype="float32")
    assert loaded.dtype == "float32"
    assert np.array_equal(loaded.weights[0], net.weights[0].astype(np.float32))


# --------------------------------------------------------------------------- the file itself
def test_mlp_file_has_the_expected_nodes_edges_and_metadata(tmp_path):
    net = ns.mlp([4, 6, 5, 3], activation="tanh", dtype="float32")
    variant = ns.variant("il", T=20, gamma=0.1)
    returned = ns_nir.export(net, tmp_path / "net.nir", variant, activation_in_metadata=True)
    graph = nir.read(tmp_path / "net.nir")  # NIR's own type check on
    assert isinstance(returned, nir.NIRGraph)
    assert {name: type(node).__name__ for name, node in graph.nodes.items()} == {
        "input": "Input", "affine_0": "Affine", "affine_1": "Affine", "affine_2": "Affine",
        "output": "Output"}
    assert graph.edges == [("input", "affine_0"), ("affine_0", "affine_1"), ("affine_1", "affine_2"),
                           ("affine_2", "output")]
    assert list(graph.nodes["input"].input_type["input"]) == [4]
    assert list(graph.nodes["output"].output_type["output"]) == [3]
    for index in range(3):
        node = graph.nodes[f"affine_{index}"]
        assert node.weight.shape == net.weights[index].shape  # (out, in)
        assert node.weight.dtype == np.float32
        assert np.array_equal(node.weight, net.weights[index])
        assert np.array_equal(node.bias, net.biases[index])
    assert graph.nodes["affine_0"].metadata == {"neurosim_activation": "tanh"}
    assert graph.nodes["affine_1"].metadata == {"neurosim_activation": "tanh"}
    assert graph.nodes["affine_2"].metadata == {}  # the output layer is linear
    meta = graph.metadata
    assert meta["neurosim_activation"] == "tanh" and meta["neurosim_dtype"] == "float32"
    assert meta["neurosim_variant"] == "il"
    assert json.loads(meta["neurosim_variant_hyper"])["T"] == 20
    assert meta["generator"].startswith("neurosim")


def test_cnn_file_has_the_expected_nodes_and_fields(tmp_path):
    net = digits_cnn()
    ns_nir.export(net, tmp_path / "cnn.nir", activation_in_metadata=True)
    graph = nir.read(tmp_path / "cnn.nir")
    names = ["input", "conv2d_0", "avgpool2d_1", "conv2d_2", "avgpool2d_3", "flatten_4", "affine_5",
             "output"]
    assert graph.edges == list(zip(names, names[1:]))
    assert [type(graph.nodes[n]).__name__ for n in names] == [
        "Input", "Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d", "Flatten", "Affine", "Output"]
    conv = graph.nodes["conv2d_0"]
    assert conv.weight.shape == (8, 1, 3, 3) and np.array_equal(conv.weight, net.weights[0])
    assert np.array_equal(conv.bias, net.biases[0])
    assert list(conv.stride) == [1, 1] and list(conv.padding) == [1, 1]
    assert list(conv.dilation) == [1, 1] and int(conv.groups) == 1
    assert list(conv.input_shape) == [8, 8] and list(graph.nodes["conv2d_2"].input_shape) == [4, 4]
    pool = graph.nodes["avgpool2d_3"]
    assert list(pool.kernel_size) == [2, 2] and list(pool.stride) == [2, 2] and list(pool.padding) == [0, 0]
    flat = graph.nodes["flatten_4"]
    assert (int(flat.start_dim), int(flat.end_dim)) == (0, -1)
    assert list(flat.input_type["input"]) == [16, 2, 2] and list(flat.output_type["output"]) == [64]
    assert list(graph.nodes["output"].output_type["output"]) == [10]
    assert "variant" not in " ".join(graph.metadata)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_graph_computes_the_network_function(tmp_path, activation):
    """A NIR interpreter written here, reading the exported graph, gives ``net.forward``."""
    for net in (ns.mlp([5, 7, 6, 3], activation=activation, seed=4), digits_cnn(activation=activation)):
        graph = ns_nir.export(net, tmp_path / "net.nir", activation_in_metadata=activation != "linear")
        x = inputs(net)
        want = net.forward(x)
        np.testing.assert_allclose(run_graph(graph, x), want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(run_graph(nir.read(tmp_path / "net.nir"), x), want, rtol=1e-12,
                                   atol=1e-12)


def test_linear_network_needs_no_metadata(tmp_path):
    """For activation='linear' the plain NIR graph (metadata ignored) is the whole function."""
    net = digits_cnn(activation="linear")
    graph = ns_nir.export(net, tmp_path / "net.nir")
    x = inputs(net)
    np.testing.assert_allclose(run_graph(graph, x, use_metadata=False), net.forward(x), rtol=1e-12,
                               atol=1e-12)


def test_one_layer_network_exports_without_opt_in_and_keeps_its_activation(tmp_path):
    net = ns.mlp([3, 2], activation="sigmoid")  # phi is never applied: the graph is the function
    ns_nir.export(net, tmp_path / "net.nir")
    assert ns_nir.load(tmp_path / "net.nir").activation == "sigmoid"


def test_nonlinear_hidden_activation_is_refused_without_opt_in(tmp_path):
    with pytest.raises(ValueError, match="no 'tanh' nonlinearity.*activation_in_metadata=True"):
        ns_nir.export(ns.mlp([3, 4, 2], activation="tanh"), tmp_path / "net.nir")
    assert not list(tmp_path.iterdir())


def test_graph_does_not_follow_later_training(tmp_path):
    net = ns.mlp([3, 4, 2], activation="linear")
    graph = ns_nir.export(net, tmp_path / "net.nir")
    before = graph.nodes["affine_0"].weight.copy()
    net.weights[0] = net.weights[0] + 1.0
    assert np.array_equal(graph.nodes["affine_0"].weight, before)


def test_export_overwrites_atomically_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "net.nir"
    ns_nir.export(ns.mlp([3, 2], activation="linear"), path)
    ns_nir.export(ns.mlp([3, 5], activation="linear"), str(path))  # overwrite, str path
    assert ns_nir.load(path).sizes.tolist() == [3, 5]
    old = path.read_bytes()

    def failing_write(filename, graph):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ns_nir.nir, "write", failing_write)
    with pytest.raises(OSError, match="could not write NIR file .*net.nir: disk full"):
        ns_nir.export(ns.mlp([3, 7], activation="linear"), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["net.nir"]


# --------------------------------------------------------------------------- export: bad input
def test_export_refuses_an_rnn(tmp_path):
    with pytest.raises(ValueError, match="RNN is not supported"):
        ns_nir.export(ns.rnn(3, 4, 2), tmp_path / "rnn.nir")


@pytest.mark.parametrize("thing", [None, "net", {"W1": np.ones((2, 2))}])
def test_export_refuses_a_non_network(tmp_path, thing):
    with pytest.raises(TypeError, match="must be a neurosim Network"):
        ns_nir.export(thing, tmp_path / "x.nir")


def test_export_refuses_an_unknown_layer_type(tmp_path):
    class ScaledDense(Dense):
        pass

    net = ns.Network([ScaledDense(3, 2)], activation="linear")
    with pytest.raises(ValueError, match=r"layers\[0\] \(ScaledDense\) is not supported"):
        ns_nir.export(net, tmp_path / "x.nir")


def test_export_refuses_a_non_square_kernel(tmp_path):
    net = ns.Network([Conv2d(1, 2, (3, 2)), Flatten(), Dense(2 * 6 * 7, 2)], input_shape=(1, 8, 8),
                     activation="linear")
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv2d\): non-square kernel"):
        ns_nir.export(net, tmp_path / "x.nir")


def test_export_refuses_a_bad_variant(tmp_path):
    with pytest.raises(TypeError, match="variant must be a neurosim Variant"):
        ns_nir.export(ns.mlp([3, 2]), tmp_path / "x.nir", variant="zil")


def test_export_to_a_missing_directory_names_the_path(tmp_path):
    target = tmp_path / "missing" / "net.nir"
    with pytest.raises(ValueError, match=f"cannot write NIR file {target}: directory .*missing does not"):
        ns_nir.export(ns.mlp([3, 2]), target)
    with pytest.raises(ValueError, match="is a directory"):
        ns_nir.export(ns.mlp([3, 2]), tmp_path)


# --------------------------------------------------------------------------- load: bad input
def test_load_refuses_a_corrupt_file(tmp_path):
    junk = tmp_path / "junk.nir"
    junk.write_bytes(os.urandom(512))
    with pytest.raises(ValueError, match=f"{junk} is not a readable NIR file"):
        ns_nir.load(junk)
    good = tmp_path / "good.nir"
    ns_nir.export(ns.mlp([3, 2]), good)
    truncated = tmp_path / "truncated.nir"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{truncated} is not a readable NIR file"):
        ns_nir.load(truncated)


def test_load_refuses_an_hdf5_file_that_is_not_nir(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("weights", data=np.ones(3))
    with pytest.raises(ValueError, match=f"{path} is not a readable NIR file \\(missing entry: .*'node'"):
        ns_nir.load(path)


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NIR file at"):
        ns_nir.load(tmp_path / "nothing.nir")


def test_load_refuses_a_bad_dtype(tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        ns_nir.load(tmp_path / "x.nir", dtype="int8")


def test_load_refuses_a_graph_with_a_lif_node(tmp_path):
    lif = nir.LIF(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))
    graph = chain_graph(affine(3, 4), lif, affine(4, 2), input_shape=[3])
    path = write_graph(graph, tmp_path)
    with pytest.raises(ValueError, match=f"{path}: node 'n1' \\(LIF\\) has no neurosim counterpart"):
        ns_nir.load(path)


def test_load_refuses_a_branching_graph(tmp_path):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "a": affine(3, 4), "b": affine(4, 2, seed=1), "c": affine(4, 2, seed=2),
             "out_b": nir.Output(output_type={"output": np.array([2])}),
             "out_c": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "a"), ("a", "b"), ("a", "c"), ("b", "out_b"), ("c", "out_c")]
    path = write_graph(nir.NIRGraph(nodes=nodes, edges=edges), tmp_path)
    with pytest.raises(ValueError, match="2 Output nodes"):
        ns_nir.load(path)
    nodes.pop("out_c")
    nodes["merge"] = affine(2, 2, seed=3)
    nodes["out_b"] = nir.Output(output_type={"output": np.array([2])})
    edges = [("input", "a"), ("a", "b"), ("a", "c"), ("b", "out_b"), ("c", "merge")]
    path = write_graph(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), tmp_path, "branch.nir")
    with pytest.raises(ValueError, match=r"node 'a' \(Affine\) feeds 2 nodes \('b', 'c'\)"):
        ns_nir.load(path)


def test_load_refuses_stray_nodes_and_cycles():
    graph = chain_graph(affine(3, 4), affine(4, 2), input_shape=[3])
    graph.nodes["stray"] = affine(2, 2)
    with pytest.raises(ValueError, match="'stray' are not on the chain"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 3), affine(3, 3), input_shape=[3])
    graph.edges = [("input", "n0"), ("n0", "n1"), ("n1", "n0")]
    with pytest.raises(ValueError, match="receives from 2 nodes"):
        ns_nir.from_graph(graph)


def test_load_refuses_mixed_activations():
    graph = chain_graph(affine(3, 4, neurosim_activation="tanh"), affine(4, 4, neurosim_activation="relu"),
                        affine(4, 2), input_shape=[3])
    with pytest.raises(ValueError, match="mixed hidden activations.*'n0': tanh, 'n1': relu"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 4, neurosim_activation="tanh"), affine(4, 4), affine(4, 2),
                        input_shape=[3])
    with pytest.raises(ValueError, match="mixed hidden activations.*'n1': linear"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 4, neurosim_activation="tanh"), affine(4, 2), input_shape=[3],
                        metadata={"neurosim_activation": "relu"})
    with pytest.raises(ValueError, match="graph metadata says 'relu'"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 4), affine(4, 2, neurosim_activation="tanh"), input_shape=[3])
    with pytest.raises(ValueError, match="'n1' \\(Affine\\) is the output layer"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 4, neurosim_activation="softplus"), affine(4, 2), input_shape=[3])
    with pytest.raises(ValueError, match="'n0' \\(Affine\\): unknown activation 'softplus'"):
        ns_nir.from_graph(graph)


def test_load_refuses_inconsistent_shapes():
    graph = chain_graph(affine(3, 4), affine(5, 2), input_shape=[3])
    with pytest.raises(ValueError, match=r"node 'n1' \(Affine\): weight \(2, 5\) takes inputs \(5,\) but "
                                         r"receives shape \(4,\)"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(3, 4), affine(4, 2), input_shape=[3])
    graph.nodes["output"] = nir.Output(output_type={"output": np.array([7])})
    with pytest.raises(ValueError, match=r"node 'output' \(Output\): declares shape \(7,\)"):
        ns_nir.from_graph(graph)
    graph = chain_graph(affine(64, 2), input_shape=[1, 8, 8])
    with pytest.raises(ValueError, match="a Flatten node must come before it"):
        ns_nir.from_graph(graph)
    bias = nir.Affine(weight=np.ones((2, 3)), bias=np.ones(3))
    with pytest.raises(ValueError, match=r"'n0' \(Affine\): bias has shape \(3,\), expected \(2,\)"):
        ns_nir.from_graph(chain_graph(bias, input_shape=[3]))
    nan = nir.Affine(weight=np.full((2, 3), np.nan), bias=np.ones(2))
    with pytest.raises(ValueError, match="weight contains NaN"):
        ns_nir.from_graph(chain_graph(nan, input_shape=[3]))


def conv_node(in_ch=1, out_ch=2, k=3, **fields):
    spec = dict(input_shape=None, weight=np.ones((out_ch, in_ch, k, k)), stride=1, padding=0, dilation=1,
                groups=1, bias=np.zeros(out_ch))
    spec.update(fields)
    return nir.Conv2d(**spec)


@pytest.mark.parametrize("node, message", [
    (conv_node(dilation=2), "dilation"),
    (conv_node(groups=2), "groups=2"),
    (conv_node(stride=(1, 2)), r"stride \[1, 2\]"),
    (conv_node(padding=(0, 1)), r"padding \[0, 1\]"),
    (conv_node(in_ch=3), "takes 3-channel feature maps"),
    (conv_node(input_shape=(5, 5)), r"declares input_shape \[5, 5\]"),
    (nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
     "stride 1 and padding 0"),
    (nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
     r"\(SumPool2d\) has no neurosim counterpart"),
    (nir.Flatten(input_type=None, start_dim=1, end_dim=-1), "flatten only part of a sample"),
], ids=["dilation", "groups", "stride", "padding", "channels", "input_shape", "pool", "sumpool", "flatten"])
def test_load_refuses_what_neurosim_cannot_represent(node, message):
    graph = chain_graph(node, nir.Flatten(input_type=None, start_dim=0, end_dim=-1), affine(2, 1),
                        input_shape=[1, 6, 6])
    with pytest.raises(ValueError, match=f"node 'n0' .*{message}"):
        ns_nir.from_graph(graph)


def test_load_refuses_a_map_after_the_last_affine():
    graph = chain_graph(conv_node(), nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
                        input_shape=[1, 6, 6])
    with pytest.raises(ValueError, match=r"'n1' \(Flatten\) comes after the last"):
        ns_nir.from_graph(graph)


def test_load_takes_a_plain_nir_chain_from_another_tool(tmp_path):
    """No neurosim metadata: Linear (zero bias), 'valid' padding, a linear network."""
    conv = conv_node(out_ch=2, k=3, padding="valid", bias=np.arange(2.0), input_shape=(6, 6))
    conv.weight = np.random.default_rng(0).normal(size=(2, 1, 3, 3))
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    linear = nir.Linear(weight=np.random.default_rng(1).normal(size=(3, 8)))
    graph = nir.NIRGraph.from_list(conv, pool, nir.Flatten(input_type=None, start_dim=0, end_dim=-1), linear)
    path = write_graph(graph, tmp_path)
    net = ns_nir.load(path)
    assert net.activation == "linear" and net.input_shape == (1, 6, 6)
    assert [repr(layer) for layer in net.layers] == [
        "Conv2d(1, 2, 3, stride=1, padding=0)", "AvgPool2d(2)", "Flatten()", "Dense(8, 3)"]
    assert np.array_equal(net.biases[1], np.zeros(3))
    x = inputs(net)
    np.testing.assert_allclose(net.forward(x), run_graph(nir.read(path), x), rtol=1e-12, atol=1e-12)


def test_from_graph_refuses_a_non_graph():
    with pytest.raises(TypeError, match="graph must be a nir.NIRGraph"):
        ns_nir.from_graph(affine(2, 2))
