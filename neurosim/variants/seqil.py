"""``seqil``: sequential inference learning (top-down sweeps), with a soft output target.

Alonso, Krichmar & Neftci 2024, "Understanding and improving optimization in predictive coding
networks", AAAI 38:10812 (arXiv 2305.13562, code nalonso2/PredictiveCoding-MQSeqIL). Pair it with
the MQ optimiser (:class:`neurosim.optim.MQ`) for the paper's SeqIL-MQ.

Tick 0: feed-forward initialisation ``x_l = mu_l``; soft output target
``x_L = (1 - pi) y + pi s(mu_L)``, ``pi = 1 / (1 + beta)``, where ``s`` is ``softmax`` for the
cross-entropy output (``output="ce"``) and the identity for the squared-error output
(``output="mse"``). Output error ``e_L = x_L - s(mu_L)``: the negative gradient of the output energy
(``-sum_k x_Lk log softmax(mu_L)_k``, resp. ``1/2 ||x_L - mu_L||^2``) with respect to ``mu_L``.

Tick t = 1..T (one iteration) sweeps the hidden layers top-down, step ``gamma_t = gamma / t``
(the paper's ``gamma / (1 + i)``, ``i = t - 1`` counted from 0):

    for l = L-1 .. 1:
        x_l <- x_l + gamma_t * ( -e_l + f'(x_l) * (e_{l+1} W_{l+1}) )
        e_l  = x_l - mu_l              (mu_l depends on x_{l-1}, not yet moved in this sweep)

so each layer uses the error *just updated above it* and the output error reaches layer 1 in one
sweep (parallel IL needs ``L - 1`` ticks). After the sweep every prediction is recomputed, the
output target is re-blended from the new ``mu_L`` and all errors refreshed. After tick T the Hebbian
update ``dW_l = (1/B) e_l^T phi(x_{l-1})``, ``db_l = mean_b e_l`` is returned as the loss gradient
``-dW_l`` (of the cross-entropy for ``"ce"``, of ``1/2||y - yhat||^2`` for ``"mse"``, up to the
factor ``1 - pi``).

Choices where the paper leaves room:
- ``output="ce"`` (default, the paper's softmax output) or ``"mse"`` (our networks' squared-error
  readout; the soft target then blends ``y`` with the linear prediction ``mu_L``). ``Step.loss``
  stays the squared error of the feed-forward output, as for every variant.
- The output target is re-blended after every sweep (as the public code does), not frozen at tick 0.
- Defaults ``T = 3`` (the paper: one sweep reaches every layer, 3 suffice; the public code's MLP
  runs use 3 too), ``gamma = 0.5``, ``beta = 100``. The public code's SeqIL runs use
  ``gamma = 0.05`` (with the same ``1 / t`` decay over sweeps); with a top-down sweep a step
  ``gamma < 1`` attenuates the error by ``gamma`` per layer in the first sweep, so we default to a
  larger one (``gamma = 1`` reproduces BP's deltas in the first sweep but can overshoot for large
  weights). The effect, measured on digits (64-128-128-10 tanh, batch 32, 20 epochs, one run): with
  MQ (``alpha = 1e-3``) the two steps end level (0.972 at 0.05, 0.969 at 0.5), since MQ rescales
  each layer's update; with plain SGD (``lr = 0.05``) the public step trains more slowly (0.903
  against 0.939). Pass ``gamma=0.05`` for the public code's setting.

Hyper-parameters: ``T`` (int >= 1), ``gamma`` (> 0), ``beta`` (> 0), ``output`` ("ce" | "mse"), and
the feedback pathway ``feedback`` ("symmetric" | "random" | "learned") with ``feedback_seed``,
``feedback_lr``, ``feedback_decay`` (see :mod:`neurosim.variants.feedback`).
Runs as a schedule (:mod:`neurosim.circuit.schedule`) on dense, convolutional and recurrent
networks: the numba loop for a dense network, the NumPy reference backend otherwise. Non-symmetric
feedback needs a dense network.
"""
from __future__ import annotations

from ..circuit import work
from ..circuit.schedule import Schedule
from ._common import SmallBlas, check_output, check_positive, check_ticks
from .base import register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway
from .scheduled import Scheduled


@register
class SeqIL(SmallBlas, FeedbackPathway, Scheduled):
    name = "seqil"
    defaults = {"T": 3, "gamma": 0.5, "beta": 100.0, "output": "ce", **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self._validate_feedback()
        self.hyper["T"] = check_ticks(self.hyper["T"])
        self.hyper["gamma"] = check_positive(self.hyper["gamma"], "gamma")
        self.hyper["beta"] = check_positive(self.hyper["beta"], "beta")
        self.hyper["output"] = check_output(self.hyper["output"])

    @property
    def pi(self) -> float:
        """Weight of the network's own prediction in the soft output target, ``1 / (1 + beta)``."""
        return 1.0 / (1.0 + self.hyper["beta"])

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """Forward S, each sweep feeds back (R) and re-predicts layers 2..L (Q), weight terms S. The
        first sweep is BP's backward chain plus the re-prediction; sweeps pipeline after it."""
        S, Q, R, _ = work.layer_sums(net, batch_size)
        ticks = self.n_ticks(net)
        path = 2 * net.n_layers + 2 * ticks - 1 if net.n_layers >= 2 else 2
        return {"macs": 2 * S + ticks * (Q + R), "ticks": ticks, "critical_path": path}

    def build_schedule(self, net) -> Schedule:
        """Tick 0: hidden errors, soft target. Tick t: the top-down sweep at step gamma / t (each
        layer reads the error just updated above it; its own error against the old prediction),
        then every prediction, the soft target and the energy; Hebbian terms after tick T."""
        L, T, output = net.n_layers, self.hyper["T"], self.hyper["output"]
        schedule = Schedule(output=output).new_tick()
        for layer in range(1, L):
            schedule.error(layer)
        schedule.soft_target(output, "mix", self.pi).energy()
        for tick in range(1, T + 1):
            schedule.new_tick()
            for layer in range(L - 1, 0, -1):
                schedule.feedback(layer + 1).relax(layer, self.hyper["gamma"] / tick).error(layer)
            for layer in range(2, L + 1):
                schedule.predict(layer)
            schedule.soft_target(output, "mix", self.pi).energy()
            if tick == T:
                for layer in range(1, L + 1):
                    schedule.hebbian(layer, -1.0)
        return schedule
