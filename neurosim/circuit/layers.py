"""Synapse layers: the one small contract every parametrised layer keeps.

A layer ``l`` carries the synapses from the activities ``a_{l-1} = phi(x_{l-1})`` of the population
below to the prediction of the population above::

    mu_l = forward(a_{l-1}) = W_l a_{l-1} + b_l        (a linear map of the input, plus a bias)
    feedback(e_l)           = e_l W_l                   (the transposed map: vector-Jacobian product)
    hebbian(e_l, a_{l-1})   = (sum_b e_l^T a_{l-1}, sum_b e_l)   (local: post-synaptic error x pre-
                                                                  synaptic activity)

Variants compose these three operations; a convolutional or recurrent layer only has to provide them
(plus ``macs``, the exact multiply-accumulate count of one call, for the counters) to run with every
variant. Parameters live in the owning network's flat parameter array; ``bind`` hands the layer its
views.
"""
from __future__ import annotations

import numpy as np


class Dense:
    """Fully connected synapses, ``W`` of shape ``(n_out, n_in)`` as ``torch.nn.Linear.weight``.

    forward:  (B, n_in) -> (B, n_out),   mu = a W^T + b
    feedback: (B, n_out) -> (B, n_in),   e W
    hebbian:  -> ((n_out, n_in), (n_out,)) summed over the batch
    """

    kind = "dense"

    def __init__(self, n_in: int, n_out: int):
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Dense {name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"Dense {name} must be >= 1, got {value}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.weight = None
        self.bias = None

    @property
    def in_shape(self) -> tuple:
        return (self.n_in,)

    @property
    def out_shape(self) -> tuple:
        return (self.n_out,)

    @property
    def weight_shape(self) -> tuple:
        return (self.n_out, self.n_in)

    @property
    def n_params(self) -> int:
        return self.n_out * self.n_in + self.n_out

    def bind(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias

    def init_params(self, rng: np.random.Generator) -> None:
        """PyTorch's default: W, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))."""
        bound = 1.0 / np.sqrt(self.n_in)
        self.weight[...] = rng.uniform(-bound, bound, size=self.weight_shape)
        self.bias[...] = rng.uniform(-bound, bound, size=self.n_out)

    def forward(self, presynaptic: np.ndarray) -> np.ndarray:
        return presynaptic @ self.weight.T + self.bias

    def feedback(self, error: np.ndarray) -> np.ndarray:
        return error @ self.weight

    def hebbian(self, error: np.ndarray, presynaptic: np.ndarray) -> tuple:
        return error.T @ presynaptic, error.sum(axis=0)

    def macs(self, batch: int) -> int:
        """Multiply-accumulates of one forward, feedback or hebbian call on ``batch`` samples."""
        return batch * self.n_out * self.n_in

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"
