"""Optimisers acting on a network's flat parameter array.

An optimiser turns a loss gradient ``g`` (flat, like ``net.params``; what ``variant.compute`` returns)
into a change of the parameters, in place: ``optimizer.step(net, grads)``. ``state_bytes()`` reports
the memory the optimiser keeps between steps, so memory-light rules can be compared.

The running state belongs to the network it was built on: stepping another network starts afresh
(continuing on the same network, e.g. a second ``ns.train`` call, keeps it). A step is all or nothing: a non-finite gradient is refused, and the new parameters and the new
running state (momentum, Adam's moments, MQ's scales) are formed aside and checked before any is
written; if one is not finite, :class:`neurosim.DivergenceError` says so and the network and the
optimiser are exactly as before.
"""
from __future__ import annotations

import copy
import weakref

import numpy as np

from .errors import DivergenceError
from .validation import all_finite, check_float


class Optimizer:
    """Base class: subclasses implement ``_propose(net, params, grads)`` on flat arrays, returning
    the new parameters and state without writing them."""

    name = ""

    def step(self, net, grads: np.ndarray) -> None:
        grads = np.asarray(grads)
        if grads.shape != net.params.shape:
            raise ValueError(f"grads must have shape {net.params.shape} (flat, like net.params), "
                             f"got {grads.shape}")
        if not all_finite(grads):
            raise DivergenceError(f"{self.name}: the gradient has {int(np.sum(~np.isfinite(grads)))} non-finite "
                                  f"entries; nothing applied")
        owner = self.__dict__.get("_owner")
        if owner is None or owner() is not net:
            if owner is not None:
                self.reset()  # the running state belongs to another network: never carry it over
            self._owner = weakref.ref(net)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked just below
            params, state = self._propose(net, net.params, grads)
        for name, value in (("parameters", params), *state.items()):
            if not all_finite(value):
                raise DivergenceError(f"{self.name}: the update makes the {name} non-finite; nothing applied "
                                      f"(weights and optimiser state unchanged); lower the learning rate")
        net.params[...] = params
        for name, value in state.items():
            setattr(self, name, value)

    def state_bytes(self) -> int:
        """Bytes of state kept between steps."""
        return 0

    def reset(self) -> None:
        """Forget the state (e.g. before training another network)."""

    def save_state(self):
        """A copy of everything the optimiser keeps between steps, for :meth:`load_state`."""
        return copy.deepcopy({key: value for key, value in self.__dict__.items() if not key.startswith("_")})

    def load_state(self, saved) -> None:
        """Go back to a state from :meth:`save_state` (e.g. undo a step that diverged)."""
        private = {key: value for key, value in self.__dict__.items() if key.startswith("_")}
        self.__dict__.clear()
        self.__dict__.update(copy.deepcopy(saved))
        self.__dict__.update(private)

    def _propose(self, net, params, grads) -> tuple:
        """``(new parameters, {state attribute: new value})`` without touching either."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional heavy-ball momentum (PyTorch's convention).

    v <- momentum * v + g;   theta <- theta - lr * v     (v = g when momentum = 0)
    """

    name = "sgd"

    def __init__(self, lr: float = 0.05, momentum: float = 0.0):
        self.lr = check_float(lr, "lr", positive=True)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0, max_inclusive=False)
        self.velocity = None

    def _propose(self, net, params, grads) -> tuple:
        if self.momentum == 0.0:
            return params - self.lr * grads, {}
        velocity = grads.copy() if self.velocity is None or self.velocity.shape != params.shape \
            else self.momentum * self.velocity + grads
        return params - self.lr * velocity, {"velocity": velocity}

    def state_bytes(self) -> int:
        return 0 if self.velocity is None else self.velocity.nbytes

    def reset(self) -> None:
        self.velocity = None

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): two arrays of state, each the size of the parameters.

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
    theta <- theta - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    name = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = check_float(lr, "lr", positive=True)
        self.beta1 = check_float(beta1, "beta1", minimum=0.0, maximum=1.0, max_inclusive=False)
        self.beta2 = check_float(beta2, "beta2", minimum=0.0, maximum=1.0, max_inclusive=False)
        self.eps = check_float(eps, "eps", positive=True)
        self.reset()

    def reset(self) -> None:
        self.m = self.v = None
        self.t = 0

    def _propose(self, net, params, grads) -> tuple:
        fresh = self.m is None or self.m.shape != params.shape
        m = np.zeros_like(params) if fresh else self.m
        v = np.zeros_like(params) if fresh else self.v
        t = 1 if fresh else self.t + 1
        m = self.beta1 * m + (1 - self.beta1) * grads
        v = self.beta2 * v + (1 - self.beta2) * grads * grads
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps), {"m": m, "v": v, "t": t}

    def state_bytes(self) -> int:
        return 0 if self.m is None else self.m.nbytes + self.v.nbytes

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"


class MQ(Optimizer):
    """Matrix update equalisation (Alonso, Krichmar & Neftci 2024, AAAI; code
    nalonso2/PredictiveCoding-MQSeqIL): one scalar of state per layer.

    For layer ``l`` with update ``g_l = -grads_l`` (the Hebbian/descent direction of ``W_l`` and ``b_l``
    together) and ``N`` the number of steps taken before this one:

        theta_l <- theta_l + (alpha / (v_l + r) + lr_min) * g_l
        v_l     <- rho v_l + (1 - rho) mean|g_l|,     rho = min(N / (N + 1), rho_max)

    ``v_l`` starts at ``alpha`` (REFERENCE.md, and the public code's ``wt_var``), so the first step is
    about ``g_l``; afterwards each matrix moves by about ``alpha`` per element and step, whatever the
    scale of its gradient -- Adam-like equalisation across layers with SGD's memory. As in the public
    code the step uses ``v_l`` from before this update, and ``W_l`` and ``b_l`` share one scalar.
    ``alpha`` plays the role of Adam's learning rate (default ``1e-3``; the public code's constructor
    default 0.5 is overridden per experiment); ``lr_min = 1e-3``, ``r = 1e-6``, ``rho_max = 0.9999``.
    ``state_bytes`` counts the ``L`` scalars (8 bytes each).
    """

    name = "mq"

    def __init__(self, alpha: float = 1e-3, lr_min: float = 1e-3, r: float = 1e-6,
                 rho_max: float = 0.9999):
        self.alpha = check_float(alpha, "alpha", positive=True)
        self.lr_min = check_float(lr_min, "lr_min", minimum=0.0)
        self.r = check_float(r, "r", positive=True)
        self.rho_max = check_float(rho_max, "rho_max", minimum=0.0, maximum=1.0, max_inclusive=False)
        self.reset()

    def reset(self) -> None:
        self.v = None
        self.n_steps = 0

    def _propose(self, net, params, grads) -> tuple:
        groups = net.param_groups()  # (start, stop) of W_l and b_l together, per layer
        n_layers = len(groups)
        fresh = self.v is None or len(self.v) != n_layers
        v = np.full(n_layers, self.alpha) if fresh else self.v.copy()
        n_steps = 0 if fresh else self.n_steps
        rho = min(n_steps / (n_steps + 1), self.rho_max)
        params = params.copy()
        for l, (start, stop) in enumerate(groups, start=1):
            segment = grads[start:stop]
            params[start:stop] -= (self.alpha / (v[l - 1] + self.r) + self.lr_min) * segment
            v[l - 1] = rho * v[l - 1] + (1.0 - rho) * float(np.mean(np.abs(segment)))
        return params, {"v": v, "n_steps": n_steps + 1}

    def state_bytes(self) -> int:
        return 0 if self.v is None else self.v.nbytes

    def __repr__(self) -> str:
        return f"MQ(alpha={self.alpha}, lr_min={self.lr_min}, r={self.r}, rho_max={self.rho_max})"


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "mq": MQ}


def make(name: str, **hyper) -> Optimizer:
    """An optimiser by name (``"sgd"``, ``"adam"``, ``"mq"``) with its hyper-parameters."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name](**hyper)
    except TypeError as exc:
        raise TypeError(f"optimizer {name!r}: {exc}") from None
