"""``fpa``: predictive coding under the fixed prediction assumption.

Millidge, Tschantz & Buckley 2020, "Predictive coding approximates backprop along arbitrary
computation graphs" (arXiv 2006.04182); algorithmic equivalence with BP: Rosenbaum 2022, "On the
relationship between predictive coding and backpropagation", PLoS ONE 17:e0266102 (code
RobertRosenbaum/Torch2PC, ``FixedPred``).

Tick 0: feed-forward pass ``x_l = mu_l(FF)``, ``g_l = f'(x_l(FF))`` frozen, output clamped
``x_L = y`` (so ``e_L = y - yhat`` from then on). Ticks 1..T, every hidden layer in parallel from the
previous tick's state, with predictions and Jacobians frozen at their feed-forward values:

    x_l <- x_l + gamma * ( -e_l + g_l * (e_{l+1} W_{l+1}) ),   l = 1..L-1
    e_l  = x_l - mu_l(FF)

After tick T the Hebbian update with the feed-forward presynaptic activities
``dW_l = (1/B) e_l^T phi(x_{l-1}(FF))``, ``db_l = mean_b e_l`` is returned as the loss gradient
``-dW_l``. The error dynamics are linear with fixed point ``e_l = g_l * (e_{l+1} W_{l+1}) = -d_l``
(BP's deltas); with ``gamma = 1`` the fixed point of layer ``l`` is reached exactly at tick ``L - l``,
so ``T >= L - 1`` ticks give BP's gradient to rounding. For ``0 < gamma < 2`` the iteration still
converges to the same fixed point, geometrically.

Choices where the paper leaves room:
- Hyper-parameters ``T`` (ticks, default ``None`` = ``L``, the ``t_c >= L`` of Zahid et al. 2023;
  ``L - 1`` already suffices at ``gamma = 1``) and ``gamma`` (default 1.0, so that the default
  variant equals BP; the paper's experiments use smaller steps and more ticks, e.g.
  ``T=100, gamma=0.1``).
- The Hebbian term uses the *feed-forward* presynaptic activity ``phi(x_{l-1}(FF))`` (as Torch2PC
  does), not the relaxed one; the workspace's ``acts`` are left at their feed-forward values for
  that reason while ``values`` relax.
- The frozen Jacobian is ``f'`` of the feed-forward pre-activation, evaluated once at tick 0.

Runs through the numba kernels ``relax_tick_fixed_prediction``/``relax_fixed_prediction`` (NumPy
references in :mod:`neurosim.kernels.reference`), counted by :mod:`neurosim.counting`; convolutional
networks and unrolled RNNs run the same ticks through :mod:`neurosim.circuit.generic`.
"""
from __future__ import annotations

import numpy as np

from ..circuit import ops
from ..validation import check_float, check_int
from .base import Step, Variant, raise_divergence, register


@register
class FPA(Variant):
    name = "fpa"
    defaults = {"T": None, "gamma": 1.0}

    def validate(self) -> None:
        if self.hyper["T"] is not None:
            self.hyper["T"] = check_int(self.hyper["T"], "T", minimum=1)
        self.hyper["gamma"] = check_float(self.hyper["gamma"], "gamma", positive=True)

    def n_ticks(self, net) -> int:
        return net.n_layers if self.hyper["T"] is None else self.hyper["T"]

    def update_ticks(self, net) -> np.ndarray:
        """Every layer takes its Hebbian term at the last tick (index 0 unused)."""
        return np.full(net.n_layers + 1, self.n_ticks(net), dtype=np.int64)

    def _init(self, net, ws, x, y) -> float:
        self.feedforward_and_clamp(net, ws, x, y)
        self._gains = np.zeros_like(ws.values)
        ops.activation_gains(net, ws, self._gains, tick=0)
        ops.output_error(net, ws, self._output, y)
        return self._loss

    def begin(self, net, ws, x, y, grads) -> float:
        return self._init(net, ws, x, y)

    def tick(self, net, ws, tick, grads) -> float:
        energy = ops.relax_tick_fixed_prediction(net, ws, self._gains, self.hyper["gamma"], tick)
        if np.isfinite(energy) and tick == self.n_ticks(net):
            for layer in range(1, net.n_layers + 1):
                ops.hebbian(net, ws, layer, -1.0 / ws.batch, grads, tick)
        return energy

    def compute(self, net, x, y) -> Step:
        """The fused path: one numba call runs every tick and takes the Hebbian terms."""
        x, y, ws = self.prepare(net, x, y)
        grads = np.zeros_like(net.params)
        self._init(net, ws, x, y)
        energies, (tick, layer) = ops.relax_fixed_prediction(
            net, ws, self._gains, self.hyper["gamma"], self.n_ticks(net), self.update_ticks(net),
            -1.0 / ws.batch, grads)
        if tick >= 0:
            raise_divergence(self, net, ws, tick, layer)
        return Step(grads, self._loss, self._output, energies)
