"""Drift from measured per-level statistics: CSV loading, log-time and level interpolation."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from memsim.nn.reram import MeasuredDriftModel, load_drift_statistics

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "drift" / "measured_levels_example.csv"
N = 100_000
CSV = """# two levels, three times
level,t_s,mean_S,std_S
1e-5,1,1.0e-5,1e-7
1e-5,100,0.9e-5,3e-7
1e-5,10000,0.8e-5,5e-7
3e-5,1,3.0e-5,2e-7
3e-5,100,2.8e-5,6e-7
3e-5,10000,2.5e-5,1.0e-6
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text(CSV)
    return MeasuredDriftModel(path)


def _sample(model, g_us, t, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.full((N,), g_us * 1e-6, dtype=torch.float64)
    cells = model.program(g, gen)
    return model.at_time(cells, t, gen).numpy(), cells


@pytest.mark.parametrize("g_us, t, mean_us, std_us", [
    (10.0, 100.0, 9.0, 0.3),                 # a measured row
    (30.0, 10000.0, 25.0, 1.0),              # a measured row
    (10.0, 1000.0, 8.5, 0.4),                # half-way in ln t between 100 s and 10^4 s
    (20.0, 100.0, 18.5, 0.45),               # half-way between the levels: offsets -1 and -2 uS
    (10.0, 1e6, 7.0, 0.7),                   # beyond the last time: the line through the last two
    (30.0, 0.01, 30.0, 0.2),                 # before the first time: the first
])
def test_mean_and_std_follow_the_statistics(small, g_us, t, mean_us, std_us):
    g, _ = _sample(small, g_us, t)
    assert abs(g.mean() * 1e6 - mean_us) < 5 * std_us / math.sqrt(N)
    assert g.std() * 1e6 == pytest.approx(std_us, rel=0.015)


def test_hold_beyond_the_last_time_and_time_zero(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text(CSV)
    model = MeasuredDriftModel(path, beyond="hold")
    g, cells = _sample(model, 10.0, 1e6)
    assert g.mean() * 1e6 == pytest.approx(8.0, abs=0.01)
    # right after programming: the first measured time's distribution, returned unchanged at t = 0
    assert cells.g_prog.numpy().std() * 1e6 == pytest.approx(0.1, rel=0.015)
    assert torch.equal(model.at_time(cells, 0.0, torch.Generator()), cells.g_prog)


def test_example_file_is_eight_levels_from_5_to_40_uS_up_to_a_week():
    stats = load_drift_statistics(EXAMPLE)
    np.testing.assert_allclose(stats.levels, np.arange(1, 9) * 5e-6)
    assert stats.times[0] == 1.0 and stats.times[-1] == 7 * 86400
    mean, std = stats.at(7 * 86400)
    np.testing.assert_allclose(mean, stats.mean[:, -1])
    np.testing.assert_allclose(std, stats.std[:, -1])


@pytest.mark.parametrize("text, message", [
    ("level,t,mean_S,std_S\n1e-5,1,1e-5,1e-7\n", "header must be"),
    ("level,t_s,mean_S,std_S\n1e-5,1,1e-5,-1e-7\n", "std_S >= 0"),
    ("level,t_s,mean_S,std_S\n1e-5,0,1e-5,1e-7\n", "t_s > 0"),
    ("level,t_s,mean_S,std_S\n1e-5,1,1e-5,1e-7\n2e-5,2,2e-5,1e-7\n", "every level needs every time"),
    ("level,t_s,mean_S,std_S\n1e-5,1,abc,1e-7\n", "four numbers"),
    ("level,t_s,mean_S,std_S\n1e-5,1,1e-5,1e-7\n1e-5,1,1e-5,1e-7\n", "appears twice"),
])
def test_bad_files_raise_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_drift_statistics(path)
