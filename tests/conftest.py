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
