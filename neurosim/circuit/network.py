"""The network: populations of value and error neurons joined by synapse layers.

Layers ``l = 0..L``: ``x_0`` is the clamped input, ``x_l`` (l >= 1) the value neurons holding
pre-activations, ``mu_l = W_l phi(x_{l-1}) + b_l`` their prediction and ``e_l = x_l - mu_l`` the error
neurons. ``phi_0`` is the identity; the output ``x_L`` is a linear readout. The feed-forward function
is ``Linear -> f -> Linear -> ... -> f -> Linear``, the same as a ``torch.nn.Sequential`` of
``nn.Linear`` and activation modules, with ``W_l`` laid out as ``nn.Linear.weight``.

All parameters live in one flat array (``net.params``); ``net.weights[l]`` and ``net.biases[l]`` are
views into it, so kernels, optimisers and checkpoints see one buffer.

Convolutional networks: ``Network([Conv2d, AvgPool2d, Flatten, Dense, ...], input_shape=(C, H, W))``
is the ``nn.Sequential`` with the activation inserted after every parametrised layer except the last;
pooling and flatten apply where they stand. They are folded into the presynaptic transform ``T_l`` of
the next parametrised layer, ``mu_l = W_l * T_l(phi(x_{l-1})) + b_l``, so value and error neurons exist
only at parametrised layers (feature maps ``(B, C_l, H_l, W_l)`` for a conv layer, pre-activations).
``net.is_dense`` is True only for a chain of ``Dense`` layers on flat input, which runs the fused dense
kernels; every other network runs the generic path (:mod:`neurosim.circuit.generic`) through the
layer contract, with the same tick protocol.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from .. import activations
from ..kernels import layout
from ..validation import check_array, check_dtype, check_int
from . import layers as layer_types
from . import populations as population_types
from .layers import Dense

DTYPES = ("float64", "float32")
# Network subclasses saved with a "kind" entry, by kind: they register themselves (recurrent.py), so
# this module never imports them.
SAVED_KINDS: dict = {}


class ParameterList(Sequence):
    """A fixed-length list of parameter views; assigning copies into the view (shape checked)."""

    def __init__(self, views, label):
        self._views = list(views)
        self._label = label

    def __getitem__(self, index):
        return self._views[index]

    def __len__(self):
        return len(self._views)

    def __setitem__(self, index, value):
        view = self._views[index]
        value = np.asarray(value)
        if value.shape != view.shape:
            raise ValueError(f"{self._label}[{index}] must have shape {view.shape}, got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{self._label}[{index}] contains NaN or Inf")
        view[...] = value

    def __repr__(self):
        return f"[{', '.join(f'array{v.shape}' for v in self._views)}]"


class Network:
    """A predictive-coding network of synapse layers.

    Parameters
    ----------
    layers : list of layers (``neurosim.layers.Dense``, ``Conv2d``, ``AvgPool2d``, ``Flatten``), each
        taking the previous one's output shape.
    activation : name of ``phi`` for hidden layers (see :mod:`neurosim.activations`).
    seed : seed of the PyTorch-default uniform initialisation.
    dtype : ``"float64"`` or ``"float32"``; parameters, states and kernels all use it.
    input_shape : shape of one sample, e.g. ``(1, 8, 8)``; required when the first layer is not
        ``Dense`` (default: ``(layers[0].n_in,)``).
    """

    def __init__(self, layers, activation: str = "tanh", seed: int = 0, dtype: str = "float64",
                 input_shape=None):
        if not isinstance(layers, (list, tuple)) or len(layers) == 0:
            raise ValueError("layers must be a non-empty list of layers")
        known = layer_types.PARAMETRISED + layer_types.LINEAR_MAPS
        for index, layer in enumerate(layers):
            if not isinstance(layer, known):
                raise TypeError(f"layers[{index}] must be a neurosim layer, got {type(layer).__name__}")
        dense_chain = all(isinstance(layer, Dense) for layer in layers)
        if input_shape is not None:
            input_shape = _check_shape(input_shape)
        if dense_chain and input_shape in (None, (layers[0].n_in,)):
            self._init_dense(layers, activation, seed, dtype)
        else:
            self._init_generic(layers, activation, seed, dtype, input_shape)

    def _init_dense(self, layers, activation, seed, dtype) -> None:
        for index in range(1, len(layers)):
            if layers[index].in_shape != layers[index - 1].out_shape:
                raise ValueError(
                    f"layers[{index}] expects input shape {layers[index].in_shape} but layers[{index - 1}] "
                    f"produces {layers[index - 1].out_shape}")
        self.activation = activations.check(activation)
        self.dtype = check_dtype(dtype, DTYPES)
        self.seed = check_int(seed, "seed", minimum=0)
        self.is_dense = True
        self.layers = list(layers)
        self.input_shape = (layers[0].n_in,)
        self.blocks = [([], layer) for layer in self.layers]
        self.shapes = [(layers[0].n_in,)] + [(layer.n_out,) for layer in layers]
        self.sizes = np.array([layers[0].n_in] + [layer.n_out for layer in layers], dtype=np.int64)
        self.w_off, self.b_off, n_params = layout.param_offsets(self.sizes)
        self.b_end = self.b_off + self.sizes
        self.params = layout.aligned_zeros(n_params, self.dtype)
        for index, layer in enumerate(self.layers, start=1):
            weight = self.params[self.w_off[index]:self.b_off[index]].reshape(layer.weight_shape)
            bias = self.params[self.b_off[index]:self.b_off[index] + layer.n_out]
            layer.bind(weight, bias)
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.init_params(rng)
        self.weights = ParameterList([layer.weight for layer in self.layers], "weights")
        self.biases = ParameterList([layer.bias for layer in self.layers], "biases")
        self._workspaces = {}

    def _init_generic(self, layers, activation, seed, dtype, input_shape) -> None:
        self.activation = activations.check(activation)
        self.dtype = check_dtype(dtype, DTYPES)
        self.seed = check_int(seed, "seed", minimum=0)
        if input_shape is None:
            if isinstance(layers[0], Dense):
                input_shape = (layers[0].n_in,)
            else:
                raise ValueError(f"input_shape is required when layers[0] is "
                                 f"{type(layers[0]).__name__}, e.g. input_shape=(1, 8, 8)")
        self.is_dense = False
        self.layers = list(layers)
        self.input_shape = input_shape
        # Group every parametrised layer with the linear maps standing before it.
        self.blocks, pending, shape = [], [], input_shape
        self.shapes = [input_shape]
        for index, layer in enumerate(self.layers):
            shape = layer.build(shape, index)
            if 0 in shape:
                raise ValueError(f"layers[{index}] ({type(layer).__name__}): output shape {shape} is empty")
            if isinstance(layer, layer_types.PARAMETRISED):
                self.blocks.append((pending, layer))
                self.shapes.append(tuple(shape))
                pending = []
            else:
                pending.append(layer)
        if pending:
            index = len(self.layers) - len(pending)
            raise ValueError(f"layers[{index}] ({type(self.layers[index]).__name__}): a pooling or "
                             f"flatten layer after the last parametrised layer is not supported; the "
                             f"output must come from a Dense or Conv2d layer")
        params = [block[1] for block in self.blocks]
        self.sizes = np.array([int(np.prod(s)) for s in self.shapes], dtype=np.int64)
        n_layers = len(params)
        self.w_off = np.zeros(n_layers + 1, dtype=np.int64)
        self.b_off = np.zeros(n_layers + 1, dtype=np.int64)
        self.b_end = np.zeros(n_layers + 1, dtype=np.int64)
        cursor = 0
        for l, layer in enumerate(params, start=1):
            self.w_off[l] = cursor
            cursor += int(np.prod(layer.weight_shape))
            self.b_off[l] = cursor
            cursor += layer.n_params - int(np.prod(layer.weight_shape))
            self.b_end[l] = cursor
        self.params = layout.aligned_zeros(cursor, self.dtype)
        for l, layer in enumerate(params, start=1):
            layer.bind(self.params[self.w_off[l]:self.b_off[l]].reshape(layer.weight_shape),
                       self.params[self.b_off[l]:self.b_end[l]])
        rng = np.random.default_rng(self.seed)
        for layer in params:
            layer.init_params(rng)
        self.weights = ParameterList([layer.weight for layer in params], "weights")
        self.biases = ParameterList([layer.bias for layer in params], "biases")
        self._workspaces = {}

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """L, the number of parametrised synapse layers (value layers 1..L)."""
        return len(self.blocks)

    @property
    def n_inputs(self) -> int:
        return int(self.sizes[0])

    @property
    def n_outputs(self) -> int:
        return int(self.sizes[-1])

    @property
    def act_code(self) -> int:
        return activations.code(self.activation)

    # -- input checks ------------------------------------------------------------------------
    def check_input(self, x, name: str = "x") -> np.ndarray:
        """Validate a batch of inputs ``(B, *input_shape)``; return it C-contiguous, as ``dtype``."""
        if self.is_dense:
            return check_array(x, name, (None, self.n_inputs), self.dtype)
        shape = np.shape(x)
        want = (None,) + self.input_shape
        if len(shape) != len(want) or tuple(shape[1:]) != self.input_shape:
            first = type(self.layers[0]).__name__
            what = ""
            if len(shape) == len(want) and len(self.input_shape) == 3 and shape[1] != self.input_shape[0]:
                what = f" ({shape[1]} channels, expected {self.input_shape[0]})"
            raise ValueError(f"layers[0] ({first}): {name} must have shape (B, "
                             f"{', '.join(str(n) for n in self.input_shape)}), got {tuple(shape)}{what}")
        return check_array(x, name, want, self.dtype)

    def as_input(self, features) -> np.ndarray:
        """A dataset's features ``(N, ...)`` reshaped to the network's input ``(N, *input_shape)``."""
        features = np.asarray(features)
        return np.ascontiguousarray(features.reshape((-1,) + self.input_shape), dtype=self.dtype)

    def check_features(self, n_features: int, source: str) -> None:
        """Raise a ValueError if samples of ``n_features`` values cannot feed this network."""
        if n_features != self.n_inputs:
            raise ValueError(f"{source} has {n_features} inputs but the network expects {self.n_inputs}")

    def check_target(self, y, batch: int, name: str = "y") -> np.ndarray:
        """Validate a batch of targets ``(B, n_L)`` for ``batch`` inputs.

        A network whose last layer is a ``Conv2d`` takes ``(B, C, H, W)`` targets, or flat
        ``(B, C*H*W)`` ones, returned reshaped to ``(B, C, H, W)``.
        """
        out_shape = self.shapes[-1] if not self.is_dense else (self.n_outputs,)
        if len(out_shape) > 1 and np.ndim(y) == 1 + len(out_shape):
            y = check_array(y, name, (None,) + tuple(out_shape), self.dtype)
        else:
            y = check_array(y, name, (None, self.n_outputs), self.dtype)
        if y.shape[0] != batch:
            raise ValueError(f"{name} has {y.shape[0]} rows but x has {batch}; they must match")
        return y.reshape((batch,) + tuple(out_shape)) if len(out_shape) > 1 else y

    # -- computation -------------------------------------------------------------------------
    def forward(self, x) -> np.ndarray:
        """The feed-forward function, ``(B, *input_shape) -> (B, *out_shape_L)``."""
        activity = self.check_input(x)
        for index, (maps, layer) in enumerate(self.blocks, start=1):
            for linear_map in maps:
                activity = linear_map.forward(activity)
            pre = layer.forward(activity)
            activity = pre if index == self.n_layers else activations.apply(self.activation, pre)
        return activity

    # -- the generic path's view of a layer (see neurosim.circuit.generic) -------------------
    def presynaptic(self, layer: int, acts: np.ndarray) -> np.ndarray:
        """``T_l(phi(x_{l-1}))``: the activity below layer ``l`` through its pooling/flatten maps."""
        for linear_map in self.blocks[layer - 1][0]:
            acts = linear_map.forward(acts)
        return acts

    def layer_inputs(self, layer: int, ws) -> list:
        """The activity arrays ``layer_predict(l, ws)`` reads: ``[phi(x_{l-1})]``."""
        return [ws.layer("acts", layer - 1)]

    def layer_predict(self, layer: int, ws) -> np.ndarray:
        """``mu_l = W_l * T_l(phi(x_{l-1})) + b_l`` from the activities in ``ws``."""
        return self.blocks[layer - 1][1].forward(self.presynaptic(layer, ws.layer("acts", layer - 1)))

    def layer_feedback(self, layer: int, error: np.ndarray) -> np.ndarray:
        """``T_l^T(W_l^T * e_l)``: the VJP of ``mu_l`` wrt ``phi(x_{l-1})``, shaped like ``x_{l-1}``."""
        maps, synapses = self.blocks[layer - 1]
        g = synapses.feedback(error)
        for linear_map in reversed(maps):
            g = linear_map.transposed(g)
        return g

    def layer_hebbian(self, layer: int, error: np.ndarray, ws, scale: float, grads: np.ndarray) -> None:
        """Write ``scale * hebbian(e_l, T_l(phi(x_{l-1})))`` into layer ``l``'s slots of ``grads``."""
        presyn = self.presynaptic(layer, ws.layer("acts", layer - 1))
        grad_weight, grad_bias = self.blocks[layer - 1][1].hebbian(error, presyn)
        grads[self.w_off[layer]:self.b_off[layer]] = scale * grad_weight.ravel()
        grads[self.b_off[layer]:self.b_end[layer]] = scale * grad_bias

    def layer_macs(self, layer: int, batch: int) -> int:
        """Multiply-accumulates of one forward (or feedback, or hebbian) call of layer ``l``."""
        return self.blocks[layer - 1][1].macs(batch)

    def feedback_macs(self, layer: int, batch: int) -> int:
        """Multiply-accumulates of layer ``l``'s feedback (its VJP into layer ``l - 1``)."""
        return self.layer_macs(layer, batch)

    def fan_out(self, layer: int) -> tuple:
        """``(up, down)``: synapses one message drives, on average, from ``value[l-1]`` into
        ``error[l]`` and from ``error[l]`` into ``value[l-1]`` (``n_l`` and ``n_{l-1}`` for a dense
        layer; a convolution's mean over positions, borders included)."""
        return (self.layer_macs(layer, 1) / int(self.sizes[layer - 1]),
                self.feedback_macs(layer, 1) / int(self.sizes[layer]))

    def layer_transmit(self, layer: int, change: np.ndarray) -> np.ndarray:
        """``W_l T_l(change)``: what a change of ``phi(x_{l-1})`` adds to ``mu_l`` (no bias)."""
        return self.blocks[layer - 1][1].transmit(self.presynaptic(layer, change))

    def layer_parameters(self, layer: int) -> int:
        """Distinct parameters (weights and biases) of layer ``l``'s synapses."""
        return int(self.b_end[layer] - self.w_off[layer])

    def populations(self) -> list:
        """The named populations ``value[l]``, ``error[l]`` (see :mod:`neurosim.circuit.populations`)."""
        return population_types.populations(self)

    def connections(self, feedback: str = "symmetric") -> list:
        """The named synapse matrices ``W[l]`` and their feedback (see :mod:`neurosim.circuit.populations`)."""
        return population_types.connections(self, feedback)

    def param_groups(self) -> list:
        """``[(start, stop), ...]``: the slice of ``params`` holding ``W_l`` and ``b_l``, per layer."""
        return [(int(self.w_off[l]), int(self.b_end[l])) for l in range(1, self.n_layers + 1)]

    def grad_views(self, grads: np.ndarray) -> list:
        """``[(dW_1, db_1), ...]``: views of a flat gradient shaped like ``weights`` and ``biases``."""
        return [(grads[self.w_off[l]:self.b_off[l]].reshape(self.weights[l - 1].shape),
                 grads[self.b_off[l]:self.b_end[l]]) for l in range(1, self.n_layers + 1)]

    def loss(self, x, y) -> float:
        """``mean_b 1/2 ||y_b - yhat_b||^2``."""
        out = self.forward(x)
        y = self.check_target(y, out.shape[0])
        return float(0.5 * np.sum((y - out) ** 2) / out.shape[0])

    def workspace(self, batch: int) -> layout.DenseWorkspace:
        """Preallocated state buffers for ``batch`` samples (created once, reused)."""
        ws = self._workspaces.get(batch)
        if ws is None:
            if len(self._workspaces) >= 4:
                self._workspaces.pop(next(iter(self._workspaces)))
            if self.is_dense:
                ws = layout.DenseWorkspace(self.sizes, batch, self.dtype)
            else:
                ws = layout.ShapedWorkspace(self.shapes, batch, self.dtype)
            self._workspaces[batch] = ws
        return ws

    # -- copies and files --------------------------------------------------------------------
    def copy(self) -> "Network":
        """An independent network with the same layers and parameters."""
        if self.is_dense:
            clone = Network([Dense(layer.n_in, layer.n_out) for layer in self.layers],
                            activation=self.activation, seed=self.seed, dtype=self.dtype)
        else:
            clone = Network([layer.clone() for layer in self.layers], activation=self.activation,
                            seed=self.seed, dtype=self.dtype, input_shape=self.input_shape)
        clone.params[...] = self.params
        return clone

    def state_dict(self) -> dict:
        """Arrays ``W1, b1, ..., WL, bL`` (copies) plus the architecture, for ``np.savez``."""
        state = {"sizes": self.sizes.copy(), "activation": np.array(self.activation)}
        if not self.is_dense:
            state["architecture"] = np.array(json.dumps(
                {"layers": [layer.config() for layer in self.layers],
                 "input_shape": list(self.input_shape)}))
        for index in range(self.n_layers):
            state[f"W{index + 1}"] = self.weights[index].copy()
            state[f"b{index + 1}"] = self.biases[index].copy()
        return state

    def save(self, path) -> None:
        """Write the weights and architecture to ``path`` (``.npz`` added if missing), atomically:
        the file is either the old one or the whole new one, never half written."""
        import io
        from pathlib import Path

        from ..checkpoint import write_atomic

        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        buffer = io.BytesIO()
        np.savez(buffer, **self.state_dict())
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path, dtype: str = "float64") -> "Network":
        """A network saved by :meth:`save`; ``ValueError`` naming the file and what is wrong for a
        corrupt or inconsistent file (missing arrays, wrong shapes, NaN or Inf weights)."""
        from ..validation import read_npz, require_keys

        where = f"network file {path}"
        data = read_npz(path, "network file")
        if "kind" in data and str(data["kind"]) in SAVED_KINDS:
            return SAVED_KINDS[str(data["kind"])].load(path, dtype=dtype)
        try:
            require_keys(data, ("activation",), where)
            if "architecture" in data:
                arch = json.loads(str(data["architecture"]))
                net = Network([layer_types.from_config(spec) for spec in arch["layers"]],
                              activation=str(data["activation"]), dtype=dtype,
                              input_shape=tuple(arch["input_shape"]))
            else:
                require_keys(data, ("sizes",), where)
                net = mlp([int(n) for n in np.atleast_1d(data["sizes"])], activation=str(data["activation"]),
                          dtype=dtype)
            for index in range(net.n_layers):
                require_keys(data, (f"W{index + 1}", f"b{index + 1}"), where)
                net.weights[index] = data[f"W{index + 1}"]
                net.biases[index] = data[f"b{index + 1}"]
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None
        return net

    def __repr__(self) -> str:
        if not self.is_dense:
            arch = ", ".join(repr(layer) for layer in self.layers)
            return (f"Network([{arch}], input_shape={self.input_shape}, activation={self.activation!r}, "
                    f"dtype={self.dtype!r})")
        arch = "-".join(str(n) for n in self.sizes)
        return f"Network({arch}, activation={self.activation!r}, dtype={self.dtype!r})"


def _check_shape(shape) -> tuple:
    if not isinstance(shape, (tuple, list)) or len(shape) == 0:
        raise ValueError(f"input_shape must be a non-empty tuple of ints, got {shape!r}")
    return tuple(check_int(n, f"input_shape[{i}]", minimum=1) for i, n in enumerate(shape))


def mlp(sizes, activation: str = "tanh", seed: int = 0, dtype: str = "float64") -> Network:
    """A dense network with layer sizes ``[n_0, n_1, ..., n_L]`` (at least two entries)."""
    if not isinstance(sizes, (list, tuple, np.ndarray)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
    sizes = [check_int(n, f"sizes[{i}]", minimum=1) for i, n in enumerate(sizes)]
    return Network([Dense(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)],
                   activation=activation, seed=seed, dtype=dtype)
