"""Small NumPy helpers shared by the variant-zoo modules (dense networks only).

Everything here works on per-layer lists: ``weights[l-1]`` is ``W_l`` ``(n_l, n_{l-1})``,
``biases[l-1]`` is ``b_l``; ``values[l]`` is ``x_l`` ``(B, n_l)`` for ``l = 0..L`` and ``acts[l]`` is
``phi_l(x_l)`` (``phi_0`` and the output readout are the identity). These are the same conventions
as :mod:`neurosim.kernels.reference`.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .. import activations, threads
from ..validation import check_float, check_int

OUTPUTS = ("mse", "ce")

def blas_threads(net, batch: int):
    """A context limiting BLAS to one thread for small circuits (see :mod:`neurosim.threads`)."""
    return threads.limit(threads.auto_threads(net, batch))


class SmallBlas:
    """Mixin: run ``compute`` with :func:`blas_threads` (one BLAS thread for small circuits)."""

    def compute(self, net, x, y, events=None):
        try:
            batch = len(x)
        except TypeError:
            batch = 1
        with blas_threads(net, batch) if hasattr(net, "sizes") else nullcontext():
            return super().compute(net, x, y, events=events)


# -- checks -----------------------------------------------------------------------------------------
def require_dense(variant, net, why: str = "") -> None:
    """A ValueError unless every layer of ``net`` is dense (``net.is_dense``, default True), naming
    the variant, the layer kinds found, what is supported and ``why``."""
    if not getattr(net, "is_dense", True):
        kinds = sorted({getattr(layer, "kind", type(layer).__name__) for layer in net.layers})
        reason = f" ({why})" if why else ""
        raise ValueError(f"variant {variant.name!r} runs on dense networks (ns.mlp) only{reason}; this "
                         f"network has layers of kind {', '.join(kinds)}; supported: dense")


def check_output(value, name: str = "output") -> str:
    if not isinstance(value, str) or value not in OUTPUTS:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in OUTPUTS)}, got {value!r}")
    return value


def check_ticks(value, name: str = "T") -> int:
    from ..validation import MAX_TICKS

    return check_int(value, name, minimum=1, maximum=MAX_TICKS)


def check_positive(value, name: str) -> float:
    return check_float(value, name, positive=True)


def check_unit_interval(value, name: str) -> float:
    """A float in [0, 1)."""
    return check_float(value, name, minimum=0.0, maximum=1.0, max_inclusive=False)


# -- network as lists -------------------------------------------------------------------------------
def layer_views(net, params: np.ndarray) -> tuple[list, list]:
    """``(weights, biases)`` as views into a flat parameter array laid out like ``net.params``."""
    weights, biases = [], []
    for l in range(1, net.n_layers + 1):
        n_out, n_in = int(net.sizes[l]), int(net.sizes[l - 1])
        weights.append(params[net.w_off[l]:net.b_off[l]].reshape(n_out, n_in))
        biases.append(params[net.b_off[l]:net.b_off[l] + n_out])
    return weights, biases


def write_layer_grads(net, grads: np.ndarray, layer: int, dW: np.ndarray, db: np.ndarray) -> None:
    """Write one layer's ``(dW_l, db_l)`` into the flat ``grads`` (overwrites)."""
    grads[net.w_off[layer]:net.b_off[layer]] = dW.ravel()
    grads[net.b_off[layer]:net.b_off[layer] + net.sizes[layer]] = db


def phi(activation: str, x: np.ndarray, layer: int, n_layers: int) -> np.ndarray:
    """phi_l: the identity for the input (l = 0) and the linear readout (l = L), f otherwise."""
    return x if layer in (0, n_layers) else activations.apply(activation, x)


def forward(weights, biases, activation: str, x: np.ndarray) -> tuple[list, list]:
    """Feed-forward pass: ``(values, acts)`` for l = 0..L (``values[L]`` are the output logits)."""
    n_layers = len(weights)
    values, acts = [x], [x]
    for l in range(1, n_layers + 1):
        h = acts[-1] @ weights[l - 1].T + biases[l - 1]
        values.append(h)
        acts.append(phi(activation, h, l, n_layers))
    return values, acts


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so that exp never overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    ez = np.exp(shifted)
    return ez / ez.sum(axis=1, keepdims=True)


def output_prediction(output: str, logits: np.ndarray) -> np.ndarray:
    """What the output layer predicts: the logits themselves (``"mse"``) or ``softmax(logits)``."""
    return logits if output == "mse" else softmax(logits)


def output_energy(output: str, target: np.ndarray, logits: np.ndarray) -> float:
    """Batch mean of the output energy: ``1/2 ||t - mu_L||^2`` or the cross-entropy
    ``-sum_k t_k log softmax(mu_L)_k``."""
    batch = logits.shape[0]
    if output == "mse":
        return float(0.5 * np.sum((target - logits) ** 2) / batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.sum(target * log_p) / batch)


def loss_and_grads(weights, biases, activation: str, output: str, x, y) -> tuple[float, list]:
    """Batch-mean loss (``"mse"``: 1/2||y - yhat||^2, ``"ce"``: cross-entropy of softmax) and its
    gradient ``[(dW_l, db_l), ...]`` by backpropagation."""
    values, acts = forward(weights, biases, activation, x)
    n_layers = len(weights)
    batch = x.shape[0]
    logits = values[-1]
    loss = output_energy(output, y, logits)
    delta = output_prediction(output, logits) - y
    grads = [None] * n_layers
    for l in range(n_layers, 0, -1):
        grads[l - 1] = (delta.T @ acts[l - 1] / batch, delta.sum(axis=0) / batch)
        if l > 1:
            delta = activations.derivative(activation, values[l - 1]) * (delta @ weights[l - 1])
    return loss, grads


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two flat arrays (0 if either is zero)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
