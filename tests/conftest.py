"""Shared test fixtures."""

import pytest


@pytest.fixture
def one_torch_thread():
    """Small tensors: one thread is ~20x faster than two fighting over a shared CI core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
