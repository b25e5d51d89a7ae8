"""``ilprox`` and ``ilprox_fast``: inference learning as an approximate proximal (implicit SGD) step.

Alonso, Millidge, Krichmar & Neftci 2022, "A theoretical framework for inference learning",
NeurIPS 35 (arXiv 2206.00164, code nalonso2/ILTheory). IL approximates implicit SGD
(:mod:`neurosim.variants.implicit_sgd`); IL-prox changes IL so that it approximates it better.

Tick 0: feed-forward initialisation ``x_l = mu_l``. Every tick t = 0..T the output target is
re-blended from the current prediction:

    x_L = ( s(mu_L) + alpha * n * y ) / ( 1 + alpha * n ),   n = mean_b ||phi(x_{L-1})||^2 + 1 + eps
    e_L = x_L - s(mu_L)

(``s = softmax`` for ``output="ce"``, the identity for ``"mse"``). Ticks 1..T relax the hidden layers
as standard IL (parallel, constant step ``gamma``):

    x_l <- x_l + gamma * ( -e_l + f'(x_l) * (e_{l+1} W_{l+1}) ),   l = 1..L-1

After tick T the normalised least-mean-squares (NLMS) update of every layer

    dW_l = (1/B) e_l^T phi(x_{l-1}) / n_l,   db_l = mean_b e_l / n_l,
    n_l  = mean_b ||phi(x_{l-1})||^2 + 1 + eps

is returned as the loss gradient ``-dW_l``. **Contract: the step size is ``alpha`` and it lives in the
output target, so train with ``ns.optim.SGD(lr=1.0)``**; then, for a linear output layer with
``output="mse"`` at batch size 1, ``W_L + dW_L`` is exactly the implicit-SGD (proximal) step
``argmin_W 1/2||y - W a - b||^2 + 1/(2 alpha) ||(W, b) - (W_L, b_L)||^2`` (the ``+1`` in ``n`` is
the bias's constant input).

With more layers, each layer's update is a proximal (NLMS) step normalised by its own ``n_l``, while
implicit SGD takes one joint step with a common ``alpha``: per layer the two point the same way
(cosine > 0.99 once the relaxation has settled), but the layers' relative sizes differ by
``n_L / n_l``, which caps the cosine of the whole (concatenated) update at about 0.98 on a 6-8-8-4
net and lower where the layers' input norms differ more; multiplying layer ``l`` by ``n_l / n_L``
brings it above 0.998 (measured: ``docs/variants_zoo.md``, tested in ``tests/test_variants_zoo.py``).

``ilprox_fast`` (IL-prox-fast) is the same algorithm with the public code's fast settings
(``train_MLP.py``, model 7): ``T = 12`` ticks, feedback step ``gamma = 0.025`` and **no step on the
layer's own error** (``gamma_error = 0``, the code's ``top_gamma``), so the hidden activities only
integrate the error sent down from above; ``alpha = 3`` and ``eps = 0.25`` are its MNIST batch-1
values.

Choices where the paper leaves room, and how the public code (``proxPC.py``) differs:
- The relaxation is ``x_l += gamma (-(gamma_error / gamma) e_l + f'(x_l) * fb_l)``, i.e. the code's
  ``dt = top_gamma * (-e_l) + bot_gamma * f'(x_l) * (e_{l+1} W_{l+1})`` with ``gamma = bot_gamma``
  and ``gamma_error = top_gamma`` (``gamma_error`` defaults to ``gamma``: plain IL relaxation).
- The norms use ``phi(x_{l-1})`` (the presynaptic activity the update multiplies), as in REFERENCE.md;
  ``phi_0`` is the raw input (the public code passes the input through ReLU too: the same for
  non-negative pixels).
- ``normalisation="batch_mean"`` (default): the output target's ``n`` is recomputed every tick as
  ``mean_b ||phi(x_{L-1})||^2 + 1 + eps`` and blended with the prediction of the same tick.
  ``normalisation="public"`` does what ``proxPC.compute_PC_targets`` does: on tick 0 ``n`` has no
  bias term (``mean_b ||phi(x_{L-1})||^2 + eps``); on later ticks it is the batch **sum**
  ``sum_b ||phi(x_{L-1})||^2 + 1 + eps`` (the same at batch 1, ``B`` times larger otherwise, so the
  target moves further towards ``y`` at large batches); and the target is blended with the
  *previous* tick's prediction ``s(mu_L)`` (the code updates the targets before it recomputes the
  predictions), its error then re-formed against the new prediction. The weight update's ``n_l`` is
  the batch mean in both, as in the code.
- Defaults of ``ilprox`` (``T = 25``, ``gamma = gamma_error = 0.015``, softmax output) are the
  public code's model 6; ``alpha = 0.5`` and ``eps = 1e-8`` are ours (the code uses ``alpha`` 2.5-5
  with ``eps = 0.25`` on MNIST at batch 1, ``alpha = 100`` with ``eps`` 1-5 on CIFAR-10).

Hyper-parameters: ``T`` (int >= 1), ``gamma`` (> 0), ``gamma_error`` (>= 0 or ``None``: ``gamma``),
``alpha`` (> 0), ``eps`` (>= 0), ``output`` ("ce" | "mse"), ``normalisation`` ("batch_mean" |
"public"), and the feedback pathway ``feedback`` ("symmetric" | "random" |
"learned") with ``feedback_seed``, ``feedback_lr``, ``feedback_decay`` (see
:mod:`neurosim.variants.feedback`). Runs as a schedule (:mod:`neurosim.circuit.schedule`) on dense,
convolutional and recurrent networks; there ``n_l`` is taken over the whole population below
(a feature map, or for an RNN's first step the whole input sequence). Non-symmetric feedback needs
a dense network.
"""
from __future__ import annotations

from ..circuit.schedule import Schedule
from ..validation import check_float
from ._common import SmallBlas, check_output, check_positive, check_ticks
from .base import register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway
from .scheduled import Scheduled

NORMALISATIONS = ("batch_mean", "public")


@register
class ILProx(SmallBlas, FeedbackPathway, Scheduled):
    name = "ilprox"
    whole_step = True
    defaults = {"T": 25, "gamma": 0.015, "gamma_error": None, "alpha": 0.5, "eps": 1e-8, "output": "ce",
                "normalisation": "batch_mean", **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self._validate_feedback()
        self.hyper["T"] = check_ticks(self.hyper["T"])
        self.hyper["gamma"] = check_positive(self.hyper["gamma"], "gamma")
        if self.hyper["gamma_error"] is not None:
            self.hyper["gamma_error"] = check_float(self.hyper["gamma_error"], "gamma_error", minimum=0.0)
        if self.hyper["normalisation"] not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {', '.join(map(repr, NORMALISATIONS))}, "
                             f"got {self.hyper['normalisation']!r}")
        self.hyper["alpha"] = check_positive(self.hyper["alpha"], "alpha")
        self.hyper["eps"] = check_float(self.hyper["eps"], "eps", minimum=0.0)
        self.hyper["output"] = check_output(self.hyper["output"])

    def build_schedule(self, net) -> Schedule:
        """Tick 0: hidden errors, blended target. Tick t: every hidden layer relaxes in parallel
        from the start-of-tick errors, predictions are recomputed, the target re-blended (before
        the new prediction with ``normalisation="public"``); the normalised Hebbian terms after
        tick T."""
        L, output = net.n_layers, self.hyper["output"]
        alpha, eps, gamma = self.hyper["alpha"], self.hyper["eps"], self.hyper["gamma"]
        gamma_error = gamma if self.hyper["gamma_error"] is None else self.hyper["gamma_error"]
        public = self.hyper["normalisation"] == "public"
        schedule = Schedule(output=output).new_tick()
        for layer in range(1, L):
            schedule.error(layer)
        schedule.soft_target(output, "nlms", alpha, eps, norm_bias=0.0 if public else 1.0).energy()
        for tick in range(1, self.hyper["T"] + 1):
            schedule.new_tick()
            # Feedback from the start-of-tick errors; below the output it was formed in the same
            # pass over W_l as the last tick's prediction (e_l has not changed since).
            for layer in range(2 if tick == 1 else max(L, 2), L + 1):
                schedule.feedback(layer)
            for layer in range(1, L):
                schedule.relax(layer, gamma, error_gain=gamma_error / gamma)
            if public:  # the public code blends with the prediction made before this tick's update
                schedule.soft_target(output, "nlms_sum", alpha, eps)
            if L >= 2:
                schedule.error(1)  # against mu_1, which reads only the clamped input
            for layer in range(2, L + 1):
                schedule.predict(layer, with_feedback=layer < L)
            if public:
                schedule.soft_target(output, "keep")
            else:
                schedule.soft_target(output, "nlms", alpha, eps)
            schedule.energy()
            if tick == self.hyper["T"]:
                for layer in range(1, L + 1):
                    schedule.hebbian(layer, -1.0, normalise_eps=eps)
        return schedule


@register
class ILProxFast(ILProx):
    name = "ilprox_fast"
    defaults = {"T": 12, "gamma": 0.025, "gamma_error": 0.0, "alpha": 3.0, "eps": 0.25, "output": "ce",
                "normalisation": "batch_mean", **FEEDBACK_DEFAULTS}
