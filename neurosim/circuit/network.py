"""The network: populations of value and error neurons joined by synapse layers.

Layers ``l = 0..L``: ``x_0`` is the clamped input, ``x_l`` (l >= 1) the value neurons holding
pre-activations, ``mu_l = W_l phi(x_{l-1}) + b_l`` their prediction and ``e_l = x_l - mu_l`` the error
neurons. ``phi_0`` is the identity; the output ``x_L`` is a linear readout. The feed-forward function
is ``Linear -> f -> Linear -> ... -> f -> Linear``, the same as a ``torch.nn.Sequential`` of
``nn.Linear`` and activation modules, with ``W_l`` laid out as ``nn.Linear.weight``.

All parameters live in one flat array (``net.params``); ``net.weights[l]`` and ``net.biases[l]`` are
views into it, so kernels, optimisers and checkpoints see one buffer.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import activations
from ..kernels import layout
from ..validation import check_array, check_dtype, check_int
from .layers import Dense

DTYPES = ("float64", "float32")


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
    layers : list of layers (``neurosim.layers.Dense``), each ``n_in`` matching the previous ``n_out``.
    activation : name of ``phi`` for hidden layers (see :mod:`neurosim.activations`).
    seed : seed of the PyTorch-default uniform initialisation.
    dtype : ``"float64"`` or ``"float32"``; parameters, states and kernels all use it.
    """

    def __init__(self, layers, activation: str = "tanh", seed: int = 0, dtype: str = "float64"):
        if not isinstance(layers, (list, tuple)) or len(layers) == 0:
            raise ValueError("layers must be a non-empty list of layers")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{index}] must be a neurosim layer, got {type(layer).__name__}")
        for index in range(1, len(layers)):
            if layers[index].in_shape != layers[index - 1].out_shape:
                raise ValueError(
                    f"layers[{index}] expects input shape {layers[index].in_shape} but layers[{index - 1}] "
                    f"produces {layers[index - 1].out_shape}")
        self.activation = activations.check(activation)
        self.dtype = check_dtype(dtype, DTYPES)
        self.seed = check_int(seed, "seed", minimum=0)
        self.layers = list(layers)
        self.sizes = np.array([layers[0].n_in] + [layer.n_out for layer in layers], dtype=np.int64)
        self.w_off, self.b_off, n_params = layout.param_offsets(self.sizes)
        self.params = np.zeros(n_params, dtype=self.dtype)
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

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """L, the number of synapse layers (value layers 1..L)."""
        return len(self.layers)

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
        """Validate a batch of inputs ``(B, n_0)`` and return it as a C-contiguous array of ``dtype``."""
        return check_array(x, name, (None, self.n_inputs), self.dtype)

    def check_target(self, y, batch: int, name: str = "y") -> np.ndarray:
        """Validate a batch of targets ``(B, n_L)`` for ``batch`` inputs."""
        y = check_array(y, name, (None, self.n_outputs), self.dtype)
        if y.shape[0] != batch:
            raise ValueError(f"{name} has {y.shape[0]} rows but x has {batch}; they must match")
        return y

    # -- computation -------------------------------------------------------------------------
    def forward(self, x) -> np.ndarray:
        """The feed-forward function, ``(B, n_0) -> (B, n_L)``."""
        activity = self.check_input(x)
        for index, layer in enumerate(self.layers, start=1):
            pre = layer.forward(activity)
            activity = pre if index == self.n_layers else activations.apply(self.activation, pre)
        return activity

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
            ws = self._workspaces[batch] = layout.DenseWorkspace(self.sizes, batch, self.dtype)
        return ws

    # -- copies and files --------------------------------------------------------------------
    def copy(self) -> "Network":
        """An independent network with the same layers and parameters."""
        clone = Network([Dense(layer.n_in, layer.n_out) for layer in self.layers],
                        activation=self.activation, seed=self.seed, dtype=self.dtype)
        clone.params[...] = self.params
        return clone

    def state_dict(self) -> dict:
        """Arrays ``W1, b1, ..., WL, bL`` (copies) plus the architecture, for ``np.savez``."""
        state = {"sizes": self.sizes.copy(), "activation": np.array(self.activation)}
        for index in range(self.n_layers):
            state[f"W{index + 1}"] = self.weights[index].copy()
            state[f"b{index + 1}"] = self.biases[index].copy()
        return state

    def save(self, path) -> None:
        np.savez(path, **self.state_dict())

    @classmethod
    def load(cls, path, dtype: str = "float64") -> "Network":
        with np.load(path) as data:
            net = mlp([int(n) for n in data["sizes"]], activation=str(data["activation"]), dtype=dtype)
            for index in range(net.n_layers):
                net.weights[index] = data[f"W{index + 1}"]
                net.biases[index] = data[f"b{index + 1}"]
        return net

    def __repr__(self) -> str:
        arch = "-".join(str(n) for n in self.sizes)
        return f"Network({arch}, activation={self.activation!r}, dtype={self.dtype!r})"


def mlp(sizes, activation: str = "tanh", seed: int = 0, dtype: str = "float64") -> Network:
    """A dense network with layer sizes ``[n_0, n_1, ..., n_L]`` (at least two entries)."""
    if not isinstance(sizes, (list, tuple, np.ndarray)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
    sizes = [check_int(n, f"sizes[{i}]", minimum=1) for i, n in enumerate(sizes)]
    return Network([Dense(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)],
                   activation=activation, seed=seed, dtype=dtype)
