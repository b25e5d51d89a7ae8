"""``implicit_sgd``: the reference proximal (implicit SGD) step that IL approximates.

Alonso, Millidge, Krichmar & Neftci 2022 (NeurIPS, arXiv 2206.00164): implicit SGD on a batch,

    theta* = argmin_theta  L(theta; batch) + 1/(2 alpha) ||theta - theta_b||^2,

``L`` the batch-mean loss: ``1/2 ||y - yhat||^2`` (``output="mse"``) or the softmax cross-entropy
(``output="ce"``). The solver is plain gradient descent on the proximal objective ``P`` (gradients
by backpropagation) with Armijo backtracking (start at step ``alpha``, halve until
``P`` decreases by at least half the step times ``||grad P||^2`` -- or, once that decrease is below
the rounding of ``P``, until ``||grad P||`` decreases -- then let it grow 1.5x, never beyond
``alpha``: a step of ``alpha`` is the fixed-point map ``theta <- theta_b - alpha grad L(theta)``,
and the proximal term alone makes any step above ``2 alpha`` unstable), run until

    ||grad P(theta)|| <= tol * ||grad L(theta_b)||        (relative tolerance, default 1e-6)

or ``max_iter`` iterations, or until ``P`` has not decreased beyond rounding for 100 iterations (the
tolerance is below rounding, or the minimum is non-smooth, e.g. at a ReLU kink, where ``||grad P||``
need not vanish); a RuntimeWarning then says how far it got. ``self.info`` holds the iterations,
the final relative residual and whether it stalled. With ReLU networks at batch size 1 we measured stalls at relative residuals ~1e-2..1e-1
and poor training; smooth activations (tanh) converge to the tolerance in 10-60 iterations.

**Contract**: ``Step.grads = (theta_b - theta*) / alpha``, so ``theta* = theta_b - alpha * grads``:
train with ``ns.optim.SGD(lr=alpha)`` to land exactly at the solution. At the solution
``grads = grad L(theta*)``: the loss gradient at the *new* point (explicit SGD uses the old one).

Counted work (:mod:`neurosim.counting`, templates in ``neurosim/circuit/work.py``, all at tick 0):
each evaluation of ``P`` is a BP forward-backward pass plus the prox term's dot product, each
``||grad P||^2`` a dot product over the parameters (every one goes through ``_dot``), each
candidate ``theta - step grad P`` an elementwise step; the totals grow with the iterations.

The network is not modified (the solve runs on a copy of the parameters). There is no relaxation:
``n_ticks = 0``; the simulator sees tick 0 (feed-forward pass) and the solve in ``end``.
Hyper-parameters: ``alpha`` (> 0, default 0.1), ``output`` ("mse" | "ce", default "mse"), ``tol``
(> 0), ``max_iter`` (int >= 1, default 5000), ``on_unconverged`` ("raise" | "warn", default
"raise"). Dense networks only.

An update from an unconverged solve is not the implicit-SGD update, so by default it is refused:
the step raises :class:`neurosim.DivergenceError` and nothing is applied (training then goes back
to its last sound state, or skips the batch). A solve that stalls at rounding (``P`` no longer
decreasing, as at a ReLU kink) with a residual below ``1e-3`` is accepted, and ``self.info`` says
so. ``on_unconverged="warn"`` applies any solve with a ``RuntimeWarning``, for scripts that knowingly
run short solves (``max_iter`` small), as the learning-rate sweep of Alonso et al. 2022 does.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import counting
from ..circuit import work
from ..errors import DivergenceError
from ..validation import MAX_TICKS, check_int
from ._common import SmallBlas, check_output, check_positive, layer_views, loss_and_grads, require_dense
from .base import Variant, register

STALL_WINDOW = 100  # stop when P has not decreased (beyond rounding) over this many iterations
STALLED_AT_ROUNDING = 1e-3  # a stalled solve this close is at rounding's floor: accepted


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """A dot product over the flat parameters (every one the solver runs goes through here)."""
    return float(a @ b)


@register
class ImplicitSGD(SmallBlas, Variant):
    name = "implicit_sgd"
    defaults = {"alpha": 0.1, "output": "mse", "tol": 1e-6, "max_iter": 5000, "on_unconverged": "raise"}

    def validate(self) -> None:
        self.hyper["alpha"] = check_positive(self.hyper["alpha"], "alpha")
        self.hyper["output"] = check_output(self.hyper["output"])
        self.hyper["tol"] = check_positive(self.hyper["tol"], "tol")
        self.hyper["max_iter"] = check_int(self.hyper["max_iter"], "max_iter", minimum=1, maximum=MAX_TICKS)
        if self.hyper["on_unconverged"] not in ("raise", "warn"):
            raise ValueError(f"on_unconverged must be 'raise' or 'warn', got {self.hyper['on_unconverged']!r}")

    def check_network(self, net) -> None:
        super().check_network(net)
        require_dense(self, net, "its proximal solver is written for dense layers, as in the paper")

    def n_ticks(self, net) -> int:
        return 0

    def begin(self, net, ws, x, y, grads, events=None):
        return self.feedforward_and_clamp(net, ws, x, y, grads)

    def tick(self, state, tick) -> float:  # pragma: no cover - n_ticks is 0
        raise RuntimeError("implicit_sgd has no relaxation ticks")

    def end(self, state) -> None:
        solution = self.solve(state.net, state.x, state.y)
        state.grads[...] = (state.net.params - solution) / self.hyper["alpha"]

    def solve(self, net, x, y) -> np.ndarray:
        """``theta*`` (flat, like ``net.params``) for the batch ``(x, y)``."""
        alpha, output = self.hyper["alpha"], self.hyper["output"]
        anchor = net.params.astype(np.float64)
        theta = anchor.copy()
        weights, biases = layer_views(net, theta)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)

        # The work each solver operation does (neurosim.circuit.work), all stamped at tick 0.
        counter = counting.sink()
        if counter is not None:
            templates = {"evaluation": work.Template(work.solver_evaluation(net, x.shape[0], output)),
                         "norm": work.Template(work.solver_norm(net)),
                         "step": work.Template(work.solver_step(net))}

        def report(name):
            if counter is not None:
                work.emit(counter, 0, templates[name])

        def evaluate(point):
            theta[...] = point
            loss, pairs = loss_and_grads(weights, biases, net.activation, output, x, y)
            flat = np.empty_like(point)
            for layer, (dW, db) in enumerate(pairs, start=1):
                flat[net.w_off[layer]:net.b_off[layer]] = dW.ravel()
                flat[net.b_off[layer]:net.b_off[layer] + net.sizes[layer]] = db
            diff = point - anchor
            value = loss + 0.5 * _dot(diff, diff) / alpha
            report("evaluation")
            return value, flat + diff / alpha

        def dot(vector):
            report("norm")
            return _dot(vector, vector)

        point = anchor.copy()
        value, grad = evaluate(point)
        scale = max(np.sqrt(dot(grad)), np.finfo(float).tiny)
        step = alpha
        residual = 1.0
        iteration = 0
        values, stalled = [value], False
        for iteration in range(1, self.hyper["max_iter"] + 1):
            gnorm2 = dot(grad)
            residual = np.sqrt(gnorm2) / scale
            if residual <= self.hyper["tol"]:
                iteration -= 1
                break
            while True:
                candidate = point - step * grad
                report("step")
                cand_value, cand_grad = evaluate(candidate)
                if cand_value <= value - 0.5 * step * gnorm2 or step < 1e-300:
                    break
                # Near the minimum the decrease drops below the rounding of P: then accept a step
                # that keeps P within rounding and shrinks the gradient.
                if cand_value <= value + 1e-13 * abs(value) and dot(cand_grad) < gnorm2:
                    break
                step *= 0.5
            point, value, grad = candidate, cand_value, cand_grad
            step = min(1.5 * step, alpha)
            values.append(value)
            if len(values) > STALL_WINDOW and values[-STALL_WINDOW - 1] - value <= 1e-12 * abs(value):
                stalled = True
                break
        residual = float(np.sqrt(dot(grad))) / scale
        if residual > self.hyper["tol"] and not (stalled and residual <= STALLED_AT_ROUNDING):
            why = (f"stalled: P did not decrease for {STALL_WINDOW} iterations (rounding, or a "
                   f"non-smooth minimum such as a ReLU kink)"
                   if stalled else f"stopped after {self.hyper['max_iter']} iterations")
            message = (f"implicit_sgd: inner solve {why} at relative residual {residual:.2e} > tol "
                       f"{self.hyper['tol']:.1e}")
            if self.hyper["on_unconverged"] == "raise":
                raise DivergenceError(f"{message}; nothing applied (raise max_iter, lower alpha, or pass "
                                      f"on_unconverged='warn' to accept it)")
            warnings.warn(f"{message}; applied anyway (on_unconverged='warn')", RuntimeWarning, stacklevel=3)
        self.info = {"iterations": iteration, "residual": float(residual), "stalled": stalled}
        return point.astype(net.params.dtype)
