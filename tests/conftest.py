"""Shared test configuration: figures off-screen, one BLAS thread.

Test problems are small; on a shared 2-core machine a second BLAS thread only adds contention
(measured: digits training 10-20x slower under load with two threads).
"""
import matplotlib
import pytest
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
