"""How many BLAS threads a circuit's matrix products should use.

On 2 cores, a second BLAS thread makes small products slower, several times so when the cores are
shared (measured: 32x128x128 GEMMs; see docs/performance.md). One rule, used by training, the
NumPy-path variants and the benchmarks.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController

# Below this many multiply-accumulates in the largest product, one BLAS thread is faster.
SINGLE_THREAD_MACS = 1 << 22


def auto_threads(net, batch: int):
    """1 for small products, ``None`` (the library's default) for large ones."""
    largest = max(int(np.prod(w.shape)) for w in net.weights)
    return 1 if batch * largest < SINGLE_THREAD_MACS else None


_CONTROLLER = []


def limit(threads):
    """A context limiting BLAS to ``threads`` threads (``None``: leave the library's default).

    The controller is built once: scanning the loaded libraries costs more than a small step.
    """
    if threads is None:
        return nullcontext()
    if not _CONTROLLER:
        # numba's np.dot calls the BLAS that SciPy bundles, a library of its own next to NumPy's;
        # it is loaded on the first kernel call that needs it, so load it now or the controller
        # would not see it and the kernels' GEMMs would keep the default thread count.
        import scipy.linalg  # noqa: F401
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=threads, user_api="blas")

