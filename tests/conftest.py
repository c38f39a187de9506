import collections

import numpy as np
import pytest

#: Counts the reliability tests report at the end of the run (README's reliability section).
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


# Small trained networks shared by the nn tests (module scope: trained once per test module).
@pytest.fixture(scope="module")
def digits():
    from memsim.nn import datasets

    return datasets.load("digits")


@pytest.fixture(scope="module")
def mlp(digits):
    from memsim.nn.train import train_mlp

    return train_mlp(digits, (64,), batchnorm=False, seed=0)


@pytest.fixture(scope="module")
def bn_mlp(digits):
    from memsim.nn.train import train_mlp

    return train_mlp(digits, (64, 32), batchnorm=True, epochs=20, seed=0)
