import collections

import numpy as np
import pytest

#: Counts the reliability tests report at the end of the run (docs/reliability.md).
RELIABILITY = collections.Counter()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def reliability():
    return RELIABILITY


def pytest_terminal_summary(terminalreporter):
    if RELIABILITY:
        terminalreporter.write_line(
            "reliability: " + ", ".join(f"{key} {value}" for key, value in sorted(RELIABILITY.items())))


# Small trained torch networks shared by the nn tests (module scope: trained once per module).
@pytest.fixture(scope="module")
def digits():
    from memsim.nn import datasets

    return datasets.load("digits")


def _digits_mlp(digits, sizes, batchnorm, epochs):
    import torch
    from torch import nn

    from memsim.nn.training import seeded, train

    layers = []
    with seeded(0):  # the layers draw their initial weights here
        for k in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[k], sizes[k + 1], bias=not (batchnorm and k < len(sizes) - 2)))
            if k < len(sizes) - 2:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(sizes[k + 1]))
                layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(torch.float64)
    return train(model, digits, epochs=epochs, seed=0)


@pytest.fixture(scope="module")
def mlp(digits):
    """64-64-10 MLP on digits (float64)."""
    return _digits_mlp(digits, (64, 64, 10), False, 30)


@pytest.fixture(scope="module")
def bn_mlp(digits):
    """64-64-BN-32-BN-10 MLP on digits (float64)."""
    return _digits_mlp(digits, (64, 64, 32, 10), True, 20)
