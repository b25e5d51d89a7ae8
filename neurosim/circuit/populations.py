"""The named parts of a circuit: populations of neurons and the connections between them.

A predictive-coding circuit of ``L`` layers has, for every layer ``l = 0..L``, a population of value
neurons ``value[l]`` (``x_l``; ``value[0]`` is the clamped input) and, for ``l >= 1``, a population of
error neurons ``error[l]`` (``e_l = x_l - mu_l``). Synapses are connections:

    W[l]   value[l-1] -> error[l]    the prediction mu_l = W_l phi(x_{l-1}) + b_l (plastic)
    W[l]^T error[l]   -> value[l-1]  the feedback e_l W_l that drives the value neurons below
    B[l]   error[l]   -> value[l-1]  a separate feedback matrix (feedback alignment, Kolen-Pollack)

Every counted event (:class:`neurosim.counting.Event`) names its ``source`` and ``target`` with these
names, so work and messages can be read per population; hardware mapping places the same objects on
cores. Shapes are per sample: ``(n_l,)`` for a dense layer, ``(C, H, W)`` for a feature map.

    >>> net = ns.mlp([64, 128, 10])
    >>> [p.name for p in populations(net)]
    ['value[0]', 'value[1]', 'error[1]', 'value[2]', 'error[2]']
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Population:
    """A named group of neurons of one layer.

    name: ``"value[l]"`` or ``"error[l]"``; kind: ``"value"`` or ``"error"``; layer: ``l``;
    shape: per-sample shape; size: neurons (``prod(shape)``); clamped: held to data (the input, and
    the output value neurons during supervised inference).
    """

    name: str
    kind: str
    layer: int
    shape: tuple
    size: int
    clamped: bool = False


@dataclass(frozen=True)
class Connection:
    """A named synapse matrix between two populations.

    name: ``"W[l]"``, ``"W[l]^T"`` or ``"B[l]"``; source, target: population names; role:
    ``"prediction"`` or ``"feedback"``; weights: distinct stored parameters (shared by the time
    copies of a recurrent layer and by the positions of a convolution); synapses: multiply-accumulates
    per sample of one pass (what a chip's synaptic operations count); plastic: changed by learning.
    """

    name: str
    source: str
    target: str
    layer: int
    role: str
    weights: int
    synapses: int
    plastic: bool = True


def populations(net) -> list:
    """Every population of ``net`` in layer order: ``value[0], value[1], error[1], ..., error[L]``."""
    shapes = net.shapes
    out = [Population("value[0]", "value", 0, tuple(shapes[0]), int(np.prod(shapes[0])), clamped=True)]
    for layer in range(1, net.n_layers + 1):
        shape = tuple(shapes[layer])
        size = int(np.prod(shape))
        out.append(Population(f"value[{layer}]", "value", layer, shape, size, clamped=layer == net.n_layers))
        out.append(Population(f"error[{layer}]", "error", layer, shape, size))
    return out


def connections(net, feedback: str = "symmetric") -> list:
    """The synapse matrices of ``net``: each layer's prediction ``W[l]`` and, for ``l >= 2``, its
    feedback (``W[l]^T`` for symmetric feedback, else ``B[l]``; ``feedback`` as in
    :mod:`neurosim.variants.feedback`). Layer 1 sends no feedback: the input is clamped."""
    if feedback not in ("symmetric", "random", "learned"):
        raise ValueError(f"feedback must be 'symmetric', 'random' or 'learned', got {feedback!r}")
    out = []
    for layer in range(1, net.n_layers + 1):
        weights = int(net.layer_parameters(layer))
        out.append(Connection(f"W[{layer}]", f"value[{layer - 1}]", f"error[{layer}]", layer, "prediction",
                              weights, int(net.layer_macs(layer, 1))))
        if layer >= 2:
            name = f"W[{layer}]^T" if feedback == "symmetric" else f"B[{layer}]"
            out.append(Connection(name, f"error[{layer}]", f"value[{layer - 1}]", layer, "feedback",
                                  0 if feedback == "symmetric" else weights,
                                  int(net.feedback_macs(layer, 1)), plastic=feedback == "learned"))
    return out
