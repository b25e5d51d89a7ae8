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

Parametrised layers: :class:`Dense` and :class:`Conv2d`. Non-parametrised linear maps
(:class:`AvgPool2d`, :class:`Flatten`) have ``forward`` and its transpose ``transposed``; a network
folds them into the presynaptic transform of the next parametrised layer,

    mu_l = W_l * T_l(phi(x_{l-1})) + b_l,     feedback(e_l) = T_l^T(W_l^T * e_l),

so value and error neurons exist only at parametrised layers (the same function as the torch
``nn.Sequential`` with the activation after every parametrised layer but the last). ``build(in_shape,
index)`` fixes a layer's input shape inside a network and raises a ``ValueError`` naming
``layers[index]`` when it cannot take that input.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..kernels import conv as conv_kernels
from ..kernels import conv_reference


def _check_positive_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _where(index) -> str:
    return "" if index is None else f"layers[{index}] "


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

    def build(self, in_shape: tuple, index=None) -> tuple:
        """Check the input shape a network feeds this layer; return the output shape."""
        if tuple(in_shape) != self.in_shape:
            hint = "; insert ns.layers.Flatten() before it" if len(in_shape) > 1 else ""
            raise ValueError(f"{_where(index)}(Dense): expects input shape {self.in_shape}, got "
                             f"{tuple(in_shape)}{hint}")
        return self.out_shape

    def clone(self) -> "Dense":
        """A fresh, unbound layer of the same architecture."""
        return Dense(self.n_in, self.n_out)

    def config(self) -> dict:
        return {"type": "dense", "n_in": self.n_in, "n_out": self.n_out}

    def init_params(self, rng: np.random.Generator) -> None:
        """PyTorch's default: W, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))."""
        bound = 1.0 / np.sqrt(self.n_in)
        self.weight[...] = rng.uniform(-bound, bound, size=self.weight_shape)
        self.bias[...] = rng.uniform(-bound, bound, size=self.n_out)

    def forward(self, presynaptic: np.ndarray) -> np.ndarray:
        return presynaptic @ self.weight.T + self.bias

    def transmit(self, presynaptic: np.ndarray) -> np.ndarray:
        """``W a``: the synaptic input alone, without the bias (what a change of ``a`` adds)."""
        return presynaptic @ self.weight.T

    def feedback(self, error: np.ndarray) -> np.ndarray:
        return error @ self.weight

    def hebbian(self, error: np.ndarray, presynaptic: np.ndarray) -> tuple:
        return error.T @ presynaptic, error.sum(axis=0)

    def macs(self, batch: int) -> int:
        """Multiply-accumulates of one forward, feedback or hebbian call on ``batch`` samples."""
        return batch * self.n_out * self.n_in

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


class Conv2d:
    """2-D convolutional synapses (cross-correlation), the same function as ``torch.nn.Conv2d``.

    ``W`` ``(out_ch, in_ch, kh, kw)`` as ``nn.Conv2d.weight``, ``b`` ``(out_ch,)``; stride ``s``, zero
    padding ``p``; ``HO = (H + 2p - kh) // s + 1`` (likewise ``WO``).

    forward:  (B, in_ch, H, W) -> (B, out_ch, HO, WO),  mu[b,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] a[b,c,is-p+u,js-p+v]
    feedback: (B, out_ch, HO, WO) -> (B, in_ch, H, W), the transposed convolution (VJP wrt a)
    hebbian:  -> ((out_ch, in_ch, kh, kw), (out_ch,)), error maps correlated with presynaptic maps,
              summed over the batch and positions
    Kernels: :mod:`neurosim.kernels.conv` (numba), references in ``conv_reference``.
    """

    kind = "conv2d"

    def __init__(self, in_ch: int, out_ch: int, kernel_size, stride: int = 1, padding: int = 0):
        self.in_ch = _check_positive_int(in_ch, "Conv2d in_ch")
        self.out_ch = _check_positive_int(out_ch, "Conv2d out_ch")
        if isinstance(kernel_size, (tuple, list)):
            if len(kernel_size) != 2:
                raise ValueError(f"Conv2d kernel_size must be an int or a pair, got {kernel_size!r}")
            kh, kw = kernel_size
        else:
            kh = kw = kernel_size
        self.kernel_size = (_check_positive_int(kh, "Conv2d kernel_size"),
                            _check_positive_int(kw, "Conv2d kernel_size"))
        self.stride = _check_positive_int(stride, "Conv2d stride")
        self.padding = _check_positive_int(padding, "Conv2d padding", minimum=0)
        self.weight = None
        self.bias = None
        self._in_shape = None
        self._out_shape = None
        self._taps = None

    # -- shape -------------------------------------------------------------------------------
    def output_hw(self, height: int, width: int) -> tuple:
        kh, kw = self.kernel_size
        return (conv_kernels.out_size(height, kh, self.stride, self.padding),
                conv_kernels.out_size(width, kw, self.stride, self.padding))

    def build(self, in_shape: tuple, index=None) -> tuple:
        """Fix the input shape ``(in_ch, H, W)``; return ``(out_ch, HO, WO)``."""
        in_shape = tuple(int(n) for n in in_shape)
        where = f"{_where(index)}(Conv2d)"
        if len(in_shape) != 3:
            raise ValueError(f"{where}: expects input feature maps (channels, height, width), got shape "
                             f"{in_shape}")
        if in_shape[0] != self.in_ch:
            raise ValueError(f"{where}: expects {self.in_ch} input channels, got {in_shape[0]}")
        height, width = in_shape[1:]
        kh, kw = self.kernel_size
        if kh > height + 2 * self.padding or kw > width + 2 * self.padding:
            pad = f" (padding {self.padding})" if self.padding else ""
            raise ValueError(f"{where}: kernel {kh}x{kw} larger than input {height}x{width}{pad}")
        self._in_shape = in_shape
        self._out_shape = (self.out_ch,) + self.output_hw(height, width)
        self._taps = (conv_kernels.valid_taps(height, kh, self.stride, self.padding)
                      * conv_kernels.valid_taps(width, kw, self.stride, self.padding))
        return self._out_shape

    @property
    def in_shape(self):
        return self._in_shape

    @property
    def out_shape(self):
        return self._out_shape

    @property
    def weight_shape(self) -> tuple:
        return (self.out_ch, self.in_ch) + self.kernel_size

    @property
    def n_params(self) -> int:
        return int(np.prod(self.weight_shape)) + self.out_ch

    def bind(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight, self.bias = weight, bias

    def init_params(self, rng: np.random.Generator) -> None:
        """PyTorch's default: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_ch kh kw."""
        bound = 1.0 / np.sqrt(self.in_ch * self.kernel_size[0] * self.kernel_size[1])
        self.weight[...] = rng.uniform(-bound, bound, size=self.weight_shape)
        self.bias[...] = rng.uniform(-bound, bound, size=self.out_ch)

    def clone(self) -> "Conv2d":
        return Conv2d(self.in_ch, self.out_ch, self.kernel_size, self.stride, self.padding)

    def config(self) -> dict:
        return {"type": "conv2d", "in_ch": self.in_ch, "out_ch": self.out_ch,
                "kernel_size": list(self.kernel_size), "stride": self.stride, "padding": self.padding}

    # -- the contract ----------------------------------------------------------------------------
    def _check(self, array: np.ndarray, what: str) -> np.ndarray:
        if array.ndim != 4:
            raise ValueError(f"Conv2d {what} must have shape (B, C, H, W), got {array.shape}")
        return np.ascontiguousarray(array)

    def forward(self, presynaptic: np.ndarray) -> np.ndarray:
        return self._convolve(presynaptic, self.bias)

    def transmit(self, presynaptic: np.ndarray) -> np.ndarray:
        """The convolution without the bias (what a change of the input adds to the output)."""
        return self._convolve(presynaptic, np.zeros_like(self.bias))

    def _convolve(self, presynaptic: np.ndarray, bias: np.ndarray) -> np.ndarray:
        a = self._check(presynaptic, "input")
        if a.shape[1] != self.in_ch:
            raise ValueError(f"Conv2d expects {self.in_ch} input channels, got {a.shape[1]}")
        ho, wo = self.output_hw(a.shape[2], a.shape[3])
        if ho < 1 or wo < 1:
            raise ValueError(f"Conv2d: kernel {self.kernel_size[0]}x{self.kernel_size[1]} larger than "
                             f"input {a.shape[2]}x{a.shape[3]}")
        if backends.is_reference():
            return conv_reference.conv2d_forward(a, self.weight, bias, self.stride,
                                                 self.padding).astype(self.weight.dtype, copy=False)
        out = np.empty((a.shape[0], self.out_ch, ho, wo), dtype=self.weight.dtype)
        conv_kernels.conv2d_forward(a, self.weight, bias, self.stride, self.padding, out)
        return out

    def feedback(self, error: np.ndarray, in_hw=None) -> np.ndarray:
        e = self._check(error, "error")
        if in_hw is None:
            if self._in_shape is None:
                raise ValueError("Conv2d.feedback needs the input size: build the layer or pass in_hw")
            in_hw = self._in_shape[1:]
        if backends.is_reference():
            return conv_reference.conv2d_transposed(e, self.weight, self.stride, self.padding,
                                                    tuple(in_hw)).astype(e.dtype, copy=False)
        out = np.empty((e.shape[0], self.in_ch) + tuple(in_hw), dtype=e.dtype)
        conv_kernels.conv2d_transposed(e, self.weight, self.stride, self.padding, out)
        return out

    def hebbian(self, error: np.ndarray, presynaptic: np.ndarray) -> tuple:
        e = self._check(error, "error")
        a = self._check(presynaptic, "input")
        if backends.is_reference():
            grad_weight, grad_bias = conv_reference.conv2d_hebbian(e, a, self.kernel_size, self.stride,
                                                                   self.padding)
            return grad_weight.astype(e.dtype, copy=False), grad_bias.astype(e.dtype, copy=False)
        grad_weight = np.empty(self.weight_shape, dtype=e.dtype)
        grad_bias = np.empty(self.out_ch, dtype=e.dtype)
        conv_kernels.conv2d_hebbian(e, a, self.stride, self.padding, grad_weight, grad_bias)
        return grad_weight, grad_bias

    def macs(self, batch: int) -> int:
        """Multiply-accumulates of one call on ``batch`` samples (taps in the padding not counted)."""
        if self._taps is None:
            raise ValueError("Conv2d.macs needs the input size: build the layer first")
        return batch * self.out_ch * self.in_ch * self._taps

    def __repr__(self) -> str:
        kh, kw = self.kernel_size
        ks = kh if kh == kw else (kh, kw)
        return f"Conv2d({self.in_ch}, {self.out_ch}, {ks}, stride={self.stride}, padding={self.padding})"


class AvgPool2d:
    """Average pooling over ``k x k`` windows with stride ``k`` (``torch.nn.AvgPool2d(k)``; floor mode).

    forward:    (B, C, H, W) -> (B, C, H // k, W // k),  mean of each window
    transposed: (B, C, H // k, W // k) -> (B, C, H, W),  each value / k^2 spread over its window
                (rows/columns cut off by the floor receive 0)
    No parameters; a linear map folded into the next parametrised layer's presynaptic transform.
    """

    kind = "avgpool2d"
    n_params = 0

    def __init__(self, k: int):
        self.k = _check_positive_int(k, "AvgPool2d k")
        self._in_shape = None
        self._out_shape = None

    def build(self, in_shape: tuple, index=None) -> tuple:
        in_shape = tuple(int(n) for n in in_shape)
        where = f"{_where(index)}(AvgPool2d)"
        if len(in_shape) != 3:
            raise ValueError(f"{where}: expects feature maps (channels, height, width), got shape {in_shape}")
        if self.k > in_shape[1] or self.k > in_shape[2]:
            raise ValueError(f"{where}: window {self.k}x{self.k} larger than input "
                             f"{in_shape[1]}x{in_shape[2]}")
        self._in_shape = in_shape
        self._out_shape = (in_shape[0], in_shape[1] // self.k, in_shape[2] // self.k)
        return self._out_shape

    @property
    def in_shape(self):
        return self._in_shape

    @property
    def out_shape(self):
        return self._out_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = self.k
        batch, channels, height, width = x.shape
        ho, wo = height // k, width // k
        return x[:, :, :ho * k, :wo * k].reshape(batch, channels, ho, k, wo, k).mean(axis=(3, 5))

    def transposed(self, g: np.ndarray, in_shape=None) -> np.ndarray:
        k = self.k
        channels, height, width = in_shape if in_shape is not None else self._in_shape
        batch, _, ho, wo = g.shape
        out = np.zeros((batch, channels, height, width), dtype=g.dtype)
        spread = np.broadcast_to((g / (k * k))[:, :, :, None, :, None], (batch, channels, ho, k, wo, k))
        out[:, :, :ho * k, :wo * k] = spread.reshape(batch, channels, ho * k, wo * k)
        return out

    def ops(self, batch: int) -> int:
        """Additions of one forward call (one per input element used)."""
        return batch * int(np.prod(self._out_shape)) * self.k * self.k

    def clone(self) -> "AvgPool2d":
        return AvgPool2d(self.k)

    def config(self) -> dict:
        return {"type": "avgpool2d", "k": self.k}

    def __repr__(self) -> str:
        return f"AvgPool2d({self.k})"


class Flatten:
    """``(B, *shape) -> (B, prod(shape))`` (``torch.nn.Flatten()``); the transpose reshapes back."""

    kind = "flatten"
    n_params = 0

    def __init__(self):
        self._in_shape = None
        self._out_shape = None

    def build(self, in_shape: tuple, index=None) -> tuple:
        self._in_shape = tuple(int(n) for n in in_shape)
        self._out_shape = (int(np.prod(self._in_shape)),)
        return self._out_shape

    @property
    def in_shape(self):
        return self._in_shape

    @property
    def out_shape(self):
        return self._out_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def transposed(self, g: np.ndarray, in_shape=None) -> np.ndarray:
        shape = in_shape if in_shape is not None else self._in_shape
        return g.reshape((g.shape[0],) + tuple(shape))

    def ops(self, batch: int) -> int:
        return 0

    def clone(self) -> "Flatten":
        return Flatten()

    def config(self) -> dict:
        return {"type": "flatten"}

    def __repr__(self) -> str:
        return "Flatten()"


PARAMETRISED = (Dense, Conv2d)
LINEAR_MAPS = (AvgPool2d, Flatten)
TYPES = {"dense": Dense, "conv2d": Conv2d, "avgpool2d": AvgPool2d, "flatten": Flatten}


def from_config(spec: dict):
    """A layer from ``{"type": "conv2d", "in_ch": 1, ...}`` (as ``layer.config()`` writes it)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a layer spec must be a table with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in TYPES:
        raise ValueError(f"unknown layer type {kind!r}; choose one of {', '.join(TYPES)}")
    kwargs = {key: value for key, value in spec.items() if key != "type"}
    if "kernel_size" in kwargs and isinstance(kwargs["kernel_size"], list):
        kwargs["kernel_size"] = tuple(kwargs["kernel_size"])
    return TYPES[kind](**kwargs)
