"""The feed-forward function of a network as a NIR graph (Neuromorphic Intermediate Representation).

NIR (https://neuroir.org, the ``nir`` package) is the exchange format of neuromorphic simulators and
chips (snnTorch, Norse, Lava, SpiNNaker2, ...). What it carries here is the network's inference
function, the ``nn.Sequential`` of ``net.forward``::

    x (B, *input_shape) -> [maps] -> W_1 . + b_1 -> phi -> [maps] -> W_2 . + b_2 -> ... -> W_L . + b_L

    export(net, "net.nir")                  # writes the HDF5 file, returns the nir.NIRGraph
    net = load("net.nir", dtype="float64")  # a neurosim Network with the same weights and function

| neurosim    | NIR node, name                   | fields                                                |
|-------------|----------------------------------|-------------------------------------------------------|
| input       | ``Input``, ``input``             | shape ``(n_0,)`` or ``(C, H, W)`` (no batch axis)     |
| ``Dense``   | ``Affine``, ``affine_<i>``       | weight ``(n_out, n_in)``, bias ``(n_out,)``           |
| ``Conv2d``  | ``Conv2d``, ``conv2d_<i>``       | weight ``(C_out, C_in, k, k)``, bias ``(C_out,)``,    |
|             |                                  | stride, padding, dilation 1, groups 1, input ``(H, W)`` |
| ``AvgPool2d`` | ``AvgPool2d``, ``avgpool2d_<i>`` | kernel_size = stride = ``(k, k)``, padding ``(0, 0)`` |
| ``Flatten`` | ``Flatten``, ``flatten_<i>``     | input_type ``(C, H, W)``, start_dim 0, end_dim -1     |
| output      | ``Output``, ``output``           | the last layer's output shape                         |

``<i>`` is the layer's position in ``net.layers``; the edges run in that order.

Activations. NIR has no static nonlinearity: its only nonlinear primitives are spiking or integrating
neurons (``LIF``, ``IF``, ``CubaLIF``, ...) and the Heaviside ``Threshold``, none of which computes
tanh, sigmoid, relu or leaky_relu (a rate-coded IF neuron only approximates relu). The NIR
specification also says that no backend may rely on node metadata: a graph must mean the same without
it. So:

- ``linear`` networks (and one-layer networks, where phi is never applied) export faithfully: the
  chain of ``Affine``/``Conv2d`` nodes *is* their function.
- any other activation with hidden layers is refused (``ValueError``) unless the caller passes
  ``activation_in_metadata=True``: then the file is written with phi recorded in the metadata of each
  hidden ``Affine``/``Conv2d`` node (``{"neurosim_activation": "tanh"}``, applied to that node's
  output) and of the graph. :func:`load` restores phi from it, so a neurosim -> NIR -> neurosim round
  trip is exact; any other NIR tool sees, and computes, the affine chain without phi.

Left out (NIR has no notion of them): error populations and predictions ``mu_l``, the feedback
``W_l^T`` and the ``f'`` gating, relaxation ticks, Hebbian plasticity and learning rules, the
optimiser and the training state. ``variant`` is recorded, as text, in the graph's metadata only.
Refused: RNNs (``ValueError``), non-square convolution kernels (NIR 1.0.8 infers a Conv2d's output
shape from the kernel height alone, so the file would declare wrong shapes).
"""
from __future__ import annotations

import json
import os
import secrets

import numpy as np

try:
    import nir
except ImportError as exc:  # an optional dependency: say how to get it, not where the import failed
    raise ImportError("neurosim.interop.nir needs the 'nir' package: pip install nir") from exc

from .. import activations
from ..circuit.layers import AvgPool2d, Conv2d, Dense, Flatten
from ..circuit.network import DTYPES, Network
from ..circuit.recurrent import RNN
from ..validation import check_dtype
from ..variants.base import Variant

# Metadata keys this module writes (and, for the activation, reads back).
ACTIVATION_KEY = "neurosim_activation"
NOTE = ("neurosim feed-forward inference function only: error neurons, feedback W^T, f' gating, "
        "relaxation and plasticity are not part of this graph")
_NODE_KIND = {Dense: "affine", Conv2d: "conv2d", AvgPool2d: "avgpool2d", Flatten: "flatten"}
_NEURON_NODES = ("LIF", "IF", "LI", "I", "CubaLIF", "CubaLI", "Threshold")


# --------------------------------------------------------------------------- export
def export(net, path, variant=None, *, activation_in_metadata: bool = False) -> "nir.NIRGraph":
    """Write ``net``'s inference graph to the NIR (HDF5) file ``path``; return the ``nir.NIRGraph``.

    The file appears whole or not at all (written beside ``path``, then renamed over it). Arrays keep
    ``net.dtype``. ``variant`` (a neurosim Variant or None) is recorded in the graph's metadata.
    A network whose hidden activation is not ``linear`` needs ``activation_in_metadata=True`` (see the
    module docstring: NIR has no tanh/sigmoid/relu, so phi then lives in metadata only).

    Raises ``TypeError`` for a non-Network or non-Variant, ``ValueError`` for what NIR cannot carry
    (an RNN, an unknown layer type, a non-square kernel, a nonlinear activation without the opt-in)
    and for a path whose directory does not exist.
    """
    graph = to_graph(net, variant, activation_in_metadata=activation_in_metadata)
    _write_atomically(graph, path)
    return graph


def to_graph(net, variant=None, *, activation_in_metadata: bool = False) -> "nir.NIRGraph":
    """The ``nir.NIRGraph`` that :func:`export` writes (same checks), without touching the disk."""
    _check_exportable(net, variant, activation_in_metadata)
    nodes = {"input": nir.Input(input_type={"input": np.array(net.input_shape, dtype=np.int64)})}
    edges, previous, parametrised_seen = [], "input", 0
    for index, layer in enumerate(net.layers):
        name = f"{_NODE_KIND[type(layer)]}_{index}"
        if isinstance(layer, (Dense, Conv2d)):
            parametrised_seen += 1
            hidden = parametrised_seen < net.n_layers
            # phi follows every parametrised layer but the last; say which, on the node it follows
            metadata = {ACTIVATION_KEY: net.activation} if hidden else {}
            nodes[name] = _parametrised_node(layer, metadata)
        elif isinstance(layer, AvgPool2d):
            pair = np.array([layer.k, layer.k], dtype=np.int64)
            nodes[name] = nir.AvgPool2d(kernel_size=pair, stride=pair.copy(),
                                        padding=np.zeros(2, dtype=np.int64))
        else:
            nodes[name] = nir.Flatten(input_type={"input": np.array(layer.in_shape, dtype=np.int64)},
                                      start_dim=0, end_dim=-1)
        edges.append((previous, name))
        previous = name
    out_shape = net.shapes[-1]
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape, dtype=np.int64)})
    edges.append((previous, "output"))
    # type_check: NIR itself verifies that every edge joins matching shapes
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_metadata(net, variant),
                        type_check=True)


def _check_exportable(net, variant, activation_in_metadata) -> None:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
    if isinstance(net, RNN):
        raise ValueError("NIR export of an RNN is not supported: only feed-forward networks of Dense, "
                         "Conv2d, AvgPool2d and Flatten layers can be exported")
    if variant is not None and not isinstance(variant, Variant):
        raise TypeError(f"variant must be a neurosim Variant or None, got {type(variant).__name__}")
    for index, layer in enumerate(net.layers):
        if type(layer) not in _NODE_KIND:
            raise ValueError(f"layers[{index}] ({type(layer).__name__}) is not supported by NIR export; "
                             f"supported layers: Dense, Conv2d, AvgPool2d, Flatten")
        if isinstance(layer, Conv2d) and layer.kernel_size[0] != layer.kernel_size[1]:
            raise ValueError(f"layers[{index}] (Conv2d): non-square kernel {layer.kernel_size} is not "
                             f"supported by NIR export (nir {getattr(nir, '__version__', '')} infers a "
                             f"Conv2d's output shape from the kernel height alone, so the file would "
                             f"declare wrong shapes)")
    if not isinstance(activation_in_metadata, bool):
        raise TypeError(f"activation_in_metadata must be True or False, got {activation_in_metadata!r}")
    if net.n_layers > 1 and net.activation != "linear" and not activation_in_metadata:
        raise ValueError(
            f"NIR has no {net.activation!r} nonlinearity (only spiking/integrating neurons and a "
            f"Heaviside threshold), so a graph of this network's hidden layers would compute the "
            f"affine chain without phi. Pass activation_in_metadata=True to export it anyway with "
            f"phi recorded in node metadata (neurosim's load restores it; other NIR tools ignore it), "
            f"or export a network with activation='linear'")


def _parametrised_node(layer, metadata: dict):
    # copies: the graph must not change when the network trains on
    weight, bias = np.array(layer.weight, copy=True), np.array(layer.bias, copy=True)
    if isinstance(layer, Dense):
        return nir.Affine(weight=weight, bias=bias, metadata=metadata)
    return nir.Conv2d(input_shape=tuple(layer.in_shape[1:]), weight=weight, stride=layer.stride,
                      padding=layer.padding, dilation=1, groups=1, bias=bias, metadata=metadata)


def _graph_metadata(net, variant) -> dict:
    from .. import __version__

    metadata = {"generator": f"neurosim {__version__}", ACTIVATION_KEY: net.activation,
                "neurosim_dtype": net.dtype, "neurosim_note": NOTE}
    if variant is not None:
        metadata["neurosim_variant"] = variant.name
        # JSON text: HDF5 cannot store every hyper-parameter value (None, nested lists) natively
        metadata["neurosim_variant_hyper"] = json.dumps(dict(variant.hyper), sort_keys=True,
                                                        default=_plain)
    return metadata


def _plain(value):
    """A JSON-able stand-in for a hyper-parameter value json cannot write (NumPy numbers, objects)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return repr(value)


def _write_atomically(graph, path) -> None:
    path = _check_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"cannot write NIR file {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"cannot write NIR file {path}: it is a directory")
    # A fresh name in the same directory, so os.replace is an atomic rename on one file system; h5py
    # creates the file itself, so it gets the usual permissions (mkstemp would make it private).
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        nir.write(temporary, graph)
        os.replace(temporary, path)
    except OSError as exc:
        raise OSError(f"could not write NIR file {path}: {exc}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _check_path(path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None


# --------------------------------------------------------------------------- load
def load(path, dtype: str = "float64") -> Network:
    """The neurosim Network stored in the NIR file ``path`` (see :func:`from_graph` for what loads).

    ``dtype``: ``"float64"`` or ``"float32"``; the file's arrays are cast to it (float64 -> float32
    rounds). Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a
    corrupt or non-NIR file and for graphs neurosim cannot represent.
    """
    dtype = check_dtype(dtype, DTYPES)
    path = _check_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        # type_check=False: shapes are checked below, with errors that name the node
        graph = nir.read(path, type_check=False)
    except Exception as exc:  # h5py, KeyError, AssertionError...: all mean "not a NIR file we can read"
        raise ValueError(f"{path} is not a readable NIR file ({_reason(exc)})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"{path} holds a single {type(graph).__name__} node, not a NIR graph")
    try:
        return from_graph(graph, dtype)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def from_graph(graph, dtype: str = "float64") -> Network:
    """The neurosim Network of a ``nir.NIRGraph``.

    Loads a simple chain ``Input -> (Affine | Linear | Conv2d | AvgPool2d | Flatten)* -> Output``
    (``Linear`` gets a zero bias) whose last computing node is ``Affine``, ``Linear`` or ``Conv2d``.
    The hidden activation is read from the ``neurosim_activation`` metadata that :func:`export` writes;
    a graph without it is ``linear`` (its plain NIR meaning). Refused with a ``ValueError`` naming the
    node: branches, cycles or stray nodes; nodes neurosim has no counterpart for (LIF and the other
    neurons, Threshold, Delay, Scale, SumPool2d, Conv1d, subgraphs); dilation, groups, asymmetric
    stride or padding, pooling with stride != kernel or padding; partial flattens; inconsistent
    shapes; non-finite weights; different activations on different hidden layers.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    dtype = check_dtype(dtype, DTYPES)
    chain = _chain(graph)
    input_name, input_node = chain[0]
    input_shape = _input_shape(input_name, input_node)
    layers, params, marked, shape = [], [], [], input_shape
    trailing = None  # the first pooling/flatten node after the latest parametrised one
    for name, node in chain[1:-1]:
        layer, layer_params = _layer(name, node, shape)
        shape = layer.build(shape)
        if 0 in shape:
            raise ValueError(f"{_describe(name, node)}: output shape {shape} is empty")
        layers.append(layer)
        if layer_params is not None:
            params.append(layer_params)
            marked.append((name, node, _activation_mark(name, node)))
            trailing = None
        elif trailing is None:
            trailing = (name, node)
    if not params:
        raise ValueError("the graph has no Affine, Linear or Conv2d node: nothing to load")
    if trailing is not None:
        raise ValueError(f"{_describe(*trailing)} comes after the last Affine/Linear/Conv2d node; "
                         f"neurosim's output must come from an Affine, Linear or Conv2d node")
    output_name, output_node = chain[-1]
    _check_output_shape(output_name, output_node, shape)
    activation = _activation(graph, marked)
    net = Network(layers, activation=activation, dtype=dtype, input_shape=input_shape)
    for index, (weight, bias) in enumerate(params):
        net.weights[index] = weight
        net.biases[index] = bias
    return net


def _chain(graph) -> list:
    """``[(name, node), ...]`` from the Input node to the Output node, if the graph is that chain."""
    nodes = graph.nodes
    inputs = [name for name, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [name for name, node in nodes.items() if isinstance(node, nir.Output)]
    for kind, found in (("Input", inputs), ("Output", outputs)):
        if len(found) != 1:
            raise ValueError(f"the graph has {len(found)} {kind} nodes ({', '.join(map(repr, found))}); "
                             f"neurosim loads a simple chain with exactly one")
    successors = {name: [] for name in nodes}
    predecessors = {name: [] for name in nodes}
    for source, target in graph.edges:
        for end in (source, target):
            if end not in nodes:
                raise ValueError(f"edge ({source!r}, {target!r}) names a node {end!r} that is not in "
                                 f"the graph")
        successors[source].append(target)
        predecessors[target].append(source)
    for name, node in nodes.items():
        if len(successors[name]) > 1:
            raise ValueError(f"{_describe(name, node)} feeds {len(successors[name])} nodes "
                             f"({', '.join(map(repr, successors[name]))}); neurosim loads only a simple "
                             f"chain Input -> ... -> Output, without branches")
        if len(predecessors[name]) > 1:
            raise ValueError(f"{_describe(name, node)} receives from {len(predecessors[name])} nodes "
                             f"({', '.join(map(repr, predecessors[name]))}); neurosim loads only a "
                             f"simple chain Input -> ... -> Output, without merges")
    start, end = inputs[0], outputs[0]
    if predecessors[start]:
        raise ValueError(f"{_describe(start, nodes[start])} receives from {predecessors[start][0]!r}; "
                         f"neurosim loads only a chain without cycles")
    order, seen = [start], {start}
    while order[-1] != end:
        current = order[-1]
        if not successors[current]:
            raise ValueError(f"{_describe(current, nodes[current])} has no outgoing edge: the chain "
                             f"from {start!r} never reaches the Output node {end!r}")
        following = successors[current][0]
        if following in seen:
            raise ValueError(f"{_describe(following, nodes[following])} closes a cycle; neurosim loads "
                             f"only a chain without cycles")
        order.append(following)
        seen.add(following)
    stray = [name for name in nodes if name not in seen]
    if stray:
        raise ValueError(f"node(s) {', '.join(map(repr, stray))} are not on the chain from {start!r} "
                         f"to {end!r}; neurosim loads only a simple chain")
    return [(name, nodes[name]) for name in order]


def _describe(name, node) -> str:
    return f"node {name!r} ({type(node).__name__})"


def _shape_of(types, key):
    value = None if types is None else types.get(key)
    return None if value is None else tuple(int(n) for n in np.asarray(value).ravel())


def _input_shape(name, node) -> tuple:
    shape = _shape_of(node.input_type, "input")
    if shape is None or len(shape) == 0 or min(shape) < 1:
        raise ValueError(f"{_describe(name, node)}: input shape {shape} is not supported; neurosim "
                         f"needs a sample shape such as (n,) or (C, H, W)")
    return shape


def _check_output_shape(name, node, shape) -> None:
    declared = _shape_of(node.output_type, "output")
    if declared is not None and declared != tuple(shape):
        raise ValueError(f"{_describe(name, node)}: declares shape {declared} but the chain produces "
                         f"{tuple(shape)}")


def _array(name, node, field, value, shape=None) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{_describe(name, node)}: {field} has dtype {array.dtype}; real numbers needed")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{_describe(name, node)}: {field} has shape {array.shape}, expected "
                         f"{tuple(shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{_describe(name, node)}: {field} contains NaN or Inf")
    return array


def _pair(name, node, field, value, what="") -> int:
    """A NIR int-or-pair field that neurosim can hold as one int: both entries equal."""
    entries = np.asarray(value).ravel()
    if entries.size not in (1, 2) or not np.issubdtype(entries.dtype, np.integer) \
            or entries[0] != entries[-1]:
        raise ValueError(f"{_describe(name, node)}: {field} {np.asarray(value).tolist()} is not "
                         f"supported; neurosim needs one int for both axes{what}")
    return int(entries[0])


def _layer(name, node, shape) -> tuple:
    """``(neurosim layer, (weight, bias) or None)`` for one chain node receiving ``shape``."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _array(name, node, "weight", node.weight)
        if weight.ndim != 2:
            raise ValueError(f"{_describe(name, node)}: weight has shape {weight.shape}; neurosim needs "
                             f"a matrix (n_out, n_in)")
        n_out, n_in = weight.shape
        if shape != (n_in,):
            hint = "; a Flatten node must come before it" if len(shape) > 1 else ""
            raise ValueError(f"{_describe(name, node)}: weight {weight.shape} takes inputs ({n_in},) but "
                             f"receives shape {shape}{hint}")
        if isinstance(node, nir.Affine):
            bias = _array(name, node, "bias", node.bias, (n_out,))
        else:
            bias = np.zeros(n_out)
        return Dense(n_in, n_out), (weight, bias)
    if isinstance(node, nir.Conv2d):
        return _conv_layer(name, node, shape)
    if isinstance(node, nir.AvgPool2d):
        k = _pair(name, node, "kernel_size", node.kernel_size)
        stride = _pair(name, node, "stride", node.stride)
        padding = _pair(name, node, "padding", node.padding)
        if stride != k or padding != 0:
            raise ValueError(f"{_describe(name, node)}: stride {stride} and padding {padding} are not "
                             f"supported; neurosim pools k x k windows with stride k, no padding")
        if len(shape) != 3 or k > shape[1] or k > shape[2]:
            raise ValueError(f"{_describe(name, node)}: a {k}x{k} window cannot pool input shape {shape}")
        return AvgPool2d(k), None
    if isinstance(node, nir.Flatten):
        declared = _shape_of(node.input_type, "input")
        if declared is not None and declared != tuple(shape):
            raise ValueError(f"{_describe(name, node)}: declares input shape {declared} but receives "
                             f"{tuple(shape)}")
        start, end = int(node.start_dim), int(node.end_dim)
        start, end = start + len(shape) if start < 0 else start, end + len(shape) if end < 0 else end
        if (start, end) != (0, len(shape) - 1):
            raise ValueError(f"{_describe(name, node)}: start_dim {node.start_dim}, end_dim "
                             f"{node.end_dim} flatten only part of a sample of shape {tuple(shape)}; "
                             f"neurosim flattens whole samples (start_dim=0, end_dim=-1: NIR shapes have "
                             f"no batch axis)")
        return Flatten(), None
    kind = type(node).__name__
    why = (": neuron dynamics and thresholds are not part of a neurosim network's feed-forward function"
           if kind in _NEURON_NODES else "")
    raise ValueError(f"{_describe(name, node)} has no neurosim counterpart{why}; neurosim loads chains "
                     f"of Affine, Linear, Conv2d, AvgPool2d and Flatten nodes")


def _conv_layer(name, node, shape) -> tuple:
    weight = _array(name, node, "weight", node.weight)
    if weight.ndim != 4:
        raise ValueError(f"{_describe(name, node)}: weight has shape {weight.shape}; neurosim needs "
                         f"(C_out, C_in, kh, kw)")
    out_ch, in_ch, kh, kw = weight.shape
    if int(np.asarray(node.groups)) != 1:
        raise ValueError(f"{_describe(name, node)}: groups={int(np.asarray(node.groups))} is not "
                         f"supported; neurosim convolutions have groups=1")
    if _pair(name, node, "dilation", node.dilation) != 1:
        raise ValueError(f"{_describe(name, node)}: dilation {np.asarray(node.dilation).tolist()} is not "
                         f"supported; neurosim convolutions have dilation 1")
    if len(shape) != 3 or shape[0] != in_ch:
        raise ValueError(f"{_describe(name, node)}: weight {weight.shape} takes {in_ch}-channel feature "
                         f"maps but receives shape {shape}")
    bias = _array(name, node, "bias", node.bias, (out_ch,))
    stride = _pair(name, node, "stride", node.stride)
    padding = node.padding
    if isinstance(padding, str) and padding == "valid":
        padding = 0
    elif isinstance(padding, str):  # "same": a symmetric zero padding only for stride 1, odd kernels
        if stride != 1 or kh != kw or kh % 2 == 0:
            raise ValueError(f"{_describe(name, node)}: padding 'same' with stride {stride} and kernel "
                             f"{kh}x{kw} is not supported; neurosim pads symmetrically")
        padding = (kh - 1) // 2
    else:
        padding = _pair(name, node, "padding", padding, " (symmetric padding)")
    declared = node.input_shape
    if declared is not None and tuple(int(n) for n in np.asarray(declared).ravel()) != tuple(shape[1:]):
        raise ValueError(f"{_describe(name, node)}: declares input_shape "
                         f"{np.asarray(declared).tolist()} but receives maps of size {shape[1:]}")
    if kh > shape[1] + 2 * padding or kw > shape[2] + 2 * padding:
        raise ValueError(f"{_describe(name, node)}: kernel {kh}x{kw} larger than input "
                         f"{shape[1]}x{shape[2]} (padding {padding})")
    return Conv2d(in_ch, out_ch, (kh, kw), stride=stride, padding=padding), (weight, bias)


def _activation_mark(name, node):
    """The activation a node's metadata says follows it (None: no mark)."""
    mark = (node.metadata or {}).get(ACTIVATION_KEY)
    if mark is None:
        return None
    if isinstance(mark, bytes):
        mark = mark.decode("utf8")
    try:
        return activations.check(str(mark))
    except ValueError as exc:
        raise ValueError(f"{_describe(name, node)}: {exc}") from None


def _activation(graph, marked) -> str:
    """The one hidden activation of the chain's parametrised nodes (``marked``: name, node, mark)."""
    last_name, last_node, last_mark = marked[-1]
    if last_mark not in (None, "linear"):
        raise ValueError(f"{_describe(last_name, last_node)} is the output layer but is marked with "
                         f"activation {last_mark!r}; neurosim's output layer is linear")
    hidden = {name: mark or "linear" for name, _, mark in marked[:-1]}
    recorded = (graph.metadata or {}).get(ACTIVATION_KEY)
    if isinstance(recorded, bytes):
        recorded = recorded.decode("utf8")
    if not hidden:
        # a one-layer network never applies phi; keep the name it was exported with
        if recorded is None:
            return "linear"
        try:
            return activations.check(str(recorded))
        except ValueError as exc:
            raise ValueError(f"graph metadata: {exc}") from None
    found = sorted(set(hidden.values()))
    if len(found) > 1:
        listing = ", ".join(f"{name!r}: {mark}" for name, mark in hidden.items())
        raise ValueError(f"mixed hidden activations ({listing}); neurosim uses one activation for all "
                         f"hidden layers")
    if recorded is not None and str(recorded) != found[0]:
        raise ValueError(f"mixed activations: the graph metadata says {str(recorded)!r} but the hidden "
                         f"nodes are marked {found[0]!r}")
    return found[0]


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):  # str(KeyError) is the repr of its argument: unwrap it
        return f"missing entry: {exc.args[0] if exc.args else exc}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
