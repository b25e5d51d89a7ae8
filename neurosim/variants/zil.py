"""``zil``: zero-divergence inference learning, exactly equal to backpropagation.

Song, Lukasiewicz, Xu & Bogacz 2020, "Can the brain do backpropagation? Exact implementation of
backpropagation in predictive coding networks", NeurIPS 33. Extended to CNNs and many-to-one RNNs by
Salvatori et al. 2021 (arXiv 2103.03725).

The IL dynamics (see :mod:`neurosim.variants.il`) under three conditions:

1. feed-forward initialisation, so every hidden error is 0 at tick 0;
2. ``gamma = 1``, so ``x_l(t) = mu_l(t-1) + f'(x_l(t-1)) * (e_{l+1}(t-1) W_{l+1})`` and the error
   ``e_l(t) = -d_l`` (BP's delta) on the tick it first becomes non-zero, ``t = L - l``;
3. the weights into layer ``l`` take their Hebbian term at tick ``t = L - l`` only, from
   ``e_l(L-l)`` and ``phi(x_{l-1}(L-l))`` (``x_{l-1}`` still at its feed-forward value then).

So ``L - 1`` ticks give every layer its update and the result equals BP's gradient to rounding.
Our choice where the paper leaves room: the term of each layer is computed at its tick and all terms
are applied together after the step, so later ticks feed errors back through the weights of the
step's start, exactly as BP does. There are no hyper-parameters.
"""
from __future__ import annotations

import numpy as np

from .base import register
from .il import IL


@register
class ZIL(IL):
    name = "zil"
    defaults: dict = {}

    def validate(self) -> None:
        self.hyper["gamma"] = 1.0

    def __repr__(self) -> str:
        return "variant('zil')"

    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def update_ticks(self, net) -> np.ndarray:
        """Layer l takes its Hebbian term at tick L - l."""
        return np.array([0] + [net.n_layers - layer for layer in range(1, net.n_layers + 1)],
                        dtype=np.int64)
