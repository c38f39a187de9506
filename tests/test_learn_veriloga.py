"""memsim.learn on a Verilog-A device: the pulse model of examples/veriloga/stanford_pku.va
against fresh ngspice transients and against the built-in model's ngspice table, the trainer on
a Verilog-A pulse model, and the refusals (a grid the device does not switch on, a table of
another device)."""
import json

import numpy as np
import pytest

from memsim.errors import FileError
from memsim.learn.insitu import InSituConfig, InSituTrainer
from memsim.learn.response import DEFAULT_TABLE, Grid, PulseModel, ResponseTable, pulse_transient


VA_TABLE = "tests/data/pulse_response_stanford_pku_va.json"
#: Integrated model against ngspice, relative (as tests/test_learn.py's built-in model).
DSTATE_RTOL = 2e-3
ENERGY_RTOL = 5e-3
#: The .va model against the built-in model, both in ngspice at the same grid points: the
#: same equations, so they differ by ngspice's time steps alone (measured: 1.2e-7).
SAME_MODEL_RTOL = 1e-5


@pytest.fixture(scope="module")
def stanford(tmp_path_factory):
    from memsim.devices import VerilogA

    return VerilogA("examples/veriloga/stanford_pku.va", v_max=1.5, cache_dir=tmp_path_factory.mktemp("va"))


@pytest.fixture(scope="module")
def table(stanford):
    return ResponseTable.load(VA_TABLE, device=stanford)


@pytest.fixture(scope="module")
def model(table):
    return PulseModel(table)


def test_va_table_equals_the_builtin_models_ngspice_table(table):
    """The .va table's grid is a subset of the built-in table's: both ngspice, same numbers."""
    builtin = ResponseTable.load(DEFAULT_TABLE).cell("device")
    cell = table.cell("device")
    index = [[int(np.argmin(np.abs(np.asarray(builtin[key]) - value))) for value in cell[key2]]
             for key, key2 in (("gap_nm", "state"), ("amplitude_v", "amplitude_v"), ("width_s", "width_s"))]
    for polarity in ("set", "reset"):
        want = np.asarray(builtin[polarity]["dgap_nm"])[np.ix_(*index)]
        np.testing.assert_allclose(cell[polarity]["dstate"], want, rtol=SAME_MODEL_RTOL)
        want = np.asarray(builtin[polarity]["energy_j"])[np.ix_(*index)]
        np.testing.assert_allclose(cell[polarity]["energy_j"], want, rtol=SAME_MODEL_RTOL)


def test_integrated_va_model_matches_its_table_and_fresh_transients(table, model, stanford):
    cell = table.cell("device")
    for polarity in ("set", "reset"):
        change, energy = model.on_grid(polarity)
        np.testing.assert_allclose(change, cell[polarity]["dstate"], rtol=DSTATE_RTOL)
        np.testing.assert_allclose(energy, cell[polarity]["energy_j"], rtol=ENERGY_RTOL)
    # Off the grid (state nm, V, s), both polarities, through ngspice's OSDI.
    for state, v, width in ((1.13, 1.23, 37e-9), (0.71, -0.93, 64e-9)):
        change, energy = pulse_transient("device", state, v, width, params=stanford)
        assert model.dstate(state, v, width) == pytest.approx(change, rel=DSTATE_RTOL)
        assert model.energy(state, v, width) == pytest.approx(energy, rel=ENERGY_RTOL)


def test_va_pulse_model_equals_the_builtin_one(model):
    """The same model through OSDI and through memsim's kernels: the integrated responses agree
    within the rate table's interpolation (measured 3e-4 at most on this grid)."""
    builtin = PulseModel(ResponseTable.load(DEFAULT_TABLE))
    states = np.linspace(0.5, 1.6, 12)
    for v in (1.1, -1.1, 0.55, -0.55):
        np.testing.assert_allclose(model.dstate(states, v, 50e-9), builtin.dgap(states * 1e-9, v, 50e-9) * 1e9,
                                   rtol=DSTATE_RTOL)


def test_trainer_runs_on_a_va_device_and_its_weights_move(model):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x[:64] / 16.0
    trainer = InSituTrainer((64, 8, 10), model, InSituConfig(update="eapu", scheme="v/2", lr=0.5))
    before = [layer.weight().copy() for layer in trainer.layers]
    record = trainer.train_epoch(x, y[:64])
    assert record["pulses"] > 0 and record["energy_j"] > 0
    moved = [np.abs(layer.weight() - w).max() for layer, w in zip(trainer.layers, before)]
    assert min(moved) > 1e-3
    # The states stay in the trainer's window, expressed in the model's nm.
    for layer in trainer.layers:
        assert trainer.state_lo - 1e-12 <= layer.gap.min() and layer.gap.max() <= trainer.state_hi + 1e-12


def test_bad_grid_and_mismatched_table_are_one_line(stanford, tmp_path):
    from memsim.devices import VerilogA

    # Far below the model's switching: refused before any transient.
    grid = Grid.for_device(stanford, amplitudes=(0.01, 0.02, 0.03, 0.04), widths=(1e-9, 2e-9, 3e-9, 4e-9))
    with pytest.raises(ValueError, match="does not switch measurably") as err:
        ResponseTable.generate((grid,), stanford)
    assert "\n" not in str(err.value)
    other = VerilogA("examples/veriloga/stanford_pku.va", params={"i0": 2e-3}, v_max=1.5,
                     cache_dir=stanford.cache_dir)
    with pytest.raises(FileError, match="other stanford_pku parameter values .i0") as err:
        ResponseTable.load(VA_TABLE, device=other)
    assert "\n" not in str(err.value)
    with pytest.raises(FileError, match="load it with device="):
        ResponseTable.load(VA_TABLE)
    with pytest.raises(FileError, match="built-in RRAM model"):
        ResponseTable.load(DEFAULT_TABLE, device=stanford)
    data = json.loads(open(VA_TABLE).read())
    data["device"]["source_sha256"] = "0" * 64
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(FileError, match="another source"):
        ResponseTable.load(tmp_path / "t.json", device=stanford)
