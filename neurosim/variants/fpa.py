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

Runs as a schedule (:mod:`neurosim.circuit.schedule`, ops ``feedback``, ``relax_fixed``, ``error``,
``hebbian``): one compiled call on a dense network, the NumPy reference backend on convolutional
networks and unrolled RNNs. The frozen gain is ``f'(mu_l)``: the prediction is frozen at the
feed-forward value ``x_l(FF)``, so no separate gain buffer is kept.
"""
from __future__ import annotations

from ..circuit import work
from ..circuit.schedule import Schedule
from ..validation import MAX_TICKS, check_float, check_int
from .base import register
from .scheduled import Scheduled


@register
class FPA(Scheduled):
    name = "fpa"
    defaults = {"T": None, "gamma": 1.0}

    def validate(self) -> None:
        if self.hyper["T"] is not None:
            self.hyper["T"] = check_int(self.hyper["T"], "T", minimum=1, maximum=MAX_TICKS)
        self.hyper["gamma"] = check_float(self.hyper["gamma"], "gamma", positive=True)

    def n_ticks(self, net) -> int:
        return net.n_layers if self.hyper["T"] is None else self.hyper["T"]

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """Forward S, feedback along the frozen Jacobians every tick (R), weight terms S; errors move
        down one layer per tick, so the chain is BP's once T >= L - 1."""
        S, _, R, _ = work.layer_sums(net, batch_size)
        ticks = self.n_ticks(net)
        path = 2 * net.n_layers if ticks >= net.n_layers - 1 else net.n_layers + ticks + 1
        return {"macs": 2 * S + ticks * R, "ticks": ticks, "critical_path": path}

    def build_schedule(self, net) -> Schedule:
        """Tick 0: e_L = y - mu_L. Tick t: feedback from the current errors, every hidden value
        steps with its frozen gain, errors against the frozen predictions; the Hebbian terms with
        the feed-forward activities after the last tick."""
        L, T = net.n_layers, self.n_ticks(net)
        schedule = Schedule(output="mse").new_tick().error(L).energy()
        for tick in range(1, T + 1):
            schedule.new_tick()
            for layer in range(2, L + 1):
                schedule.feedback(layer)
            for layer in range(1, L):
                schedule.relax_fixed(layer, self.hyper["gamma"]).error(layer)
            schedule.energy()
            if tick == T:
                for layer in range(1, L + 1):
                    schedule.hebbian(layer, -1.0)
        return schedule
