"""2-D views of flat buffers inside the kernels, without numba's general ``reshape``.

The kernels keep every layer in flat buffers (:mod:`.layout`) and take ``(B, n_l)`` and
``(n_l, n_{l-1})`` views of them on every op. numba's ``flat.reshape((rows, cols))`` serves any
layout: it normalises the shape and calls a C helper to work out the strides, about 15 ns a view
(30 ns through a helper function) -- at batch 1 a few hundred ns per op, about a third of a tick
of the digits MLP. :func:`matrix` builds the C-contiguous view of a C-contiguous 1-D slice directly
(shape and strides written, nothing called). It uses numba's array-building helpers
(``numba.np.arrayobj``); should a numba release move them, :func:`matrix` falls back to ``reshape``
(slower, same results).
"""
from __future__ import annotations

from .scalar import njit

try:
    from numba.core import cgutils, types
    from numba.core.imputils import impl_ret_borrowed
    from numba.extending import intrinsic
    from numba.np.arrayobj import make_array, populate_array
except ImportError:  # pragma: no cover - numba internals moved; see the module docstring
    intrinsic = None


def _c_contiguous_matrix(typingctx, flat, rows, cols):
    """The ``(rows, cols)`` C-contiguous view of a C-contiguous 1-D array of ``rows * cols``
    entries (unchecked: see :func:`matrix`)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"
            and isinstance(rows, types.Integer) and isinstance(cols, types.Integer)):
        return None
    matrix_type = flat.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        flat_value, rows_value, cols_value = args
        source = make_array(flat)(context, builder, flat_value)
        view = make_array(matrix_type)(context, builder)
        n_rows = context.cast(builder, rows_value, signature.args[1], types.intp)
        n_cols = context.cast(builder, cols_value, signature.args[2], types.intp)
        itemsize = source.itemsize
        populate_array(view, data=source.data,
                       shape=cgutils.pack_array(builder, [n_rows, n_cols]),
                       strides=cgutils.pack_array(builder, [builder.mul(n_cols, itemsize), itemsize]),
                       itemsize=itemsize, meminfo=source.meminfo, parent=source.parent)
        return impl_ret_borrowed(context, builder, matrix_type, view._getvalue())

    return matrix_type(flat, rows, cols), codegen


if intrinsic is not None:
    _c_contiguous_matrix = intrinsic(_c_contiguous_matrix)

    @njit(cache=True, inline="always")
    def matrix(flat, rows, cols):
        """``flat.reshape((rows, cols))`` as a view, for a C-contiguous 1-D ``flat`` of exactly
        ``rows * cols`` entries -- which is not checked here: a check that can raise keeps numba
        from pruning the view's reference counting (about 25 ns a view). The kernels take their
        views of buffers whose lengths the entry points check once per call (:func:`buffers_fit`)."""
        return _c_contiguous_matrix(flat, rows, cols)
else:  # pragma: no cover
    @njit(cache=True, inline="always")
    def matrix(flat, rows, cols):
        """``flat.reshape((rows, cols))``: numba's own reshape, where its array helpers moved."""
        return flat.reshape((rows, cols))


@njit(cache=True)
def buffers_fit(params, w_off, b_off, s_off, sizes, batch, state_length, grads_length, scratch_length):
    """Whether flat buffers hold every view the kernels take of them: ``params`` every ``W_l`` and
    ``b_l``, a state row of ``state_length`` every ``(batch, n_l)`` block, ``grads`` (unless empty)
    as many entries as ``params``, and the scratch buffer the largest ``W_l``."""
    n_layers = sizes.shape[0] - 1
    if batch < 1 or n_layers < 1 or s_off[0] < 0 or s_off[n_layers] + batch * sizes[n_layers] > state_length:
        return False
    for layer in range(1, n_layers + 1):
        n_weights = sizes[layer] * sizes[layer - 1]
        if w_off[layer] < 0 or w_off[layer] + n_weights > b_off[layer] or b_off[layer] + sizes[layer] > params.shape[0]:
            return False
        if s_off[layer - 1] + batch * sizes[layer - 1] > s_off[layer] or n_weights > scratch_length:
            return False
    return grads_length == 0 or grads_length == params.shape[0]


@njit(cache=True)
def events_fit(events, n_params, state_length, sizes):
    """Whether the send-on-delta buffers ``(settings, sent, transposed, messages, stale, index, delta,
    ready)`` fit a circuit of ``sizes`` whose parameters and state rows have these lengths."""
    settings, sent, transposed, _, stale, index, delta, ready = events
    widest = 0
    for layer in range(sizes.shape[0]):
        widest = max(widest, sizes[layer])
    return (settings.shape[0] >= 2 and sent.shape[0] >= 2 and sent.shape[1] >= state_length
            and transposed.shape[0] >= n_params and stale.shape[0] >= sizes.shape[0] and stale.shape[1] >= 2
            and index.shape[0] >= widest and delta.shape[0] >= widest and ready.shape[0] >= sizes.sum())
