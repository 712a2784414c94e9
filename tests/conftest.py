import os

import pytest
import torch


def pytest_configure(config):
    """Under pytest-xdist (``make test``: two workers on two cores) each worker computes on one thread, and so do
    the scripts it starts: two torch thread pools per worker would spin against each other on the same cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
