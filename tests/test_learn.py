"""memsim.learn: the pulse response table against fresh ngspice transients, the pulse counting
of the in-situ update rules against plain loops, write-verify and EaPU against their targets."""
import json
import math

import numpy as np
import pytest

from memsim.devices.presets import Variability
from memsim.devices.rram import conductance, gap_for_conductance
from memsim.errors import FileError
from memsim.learn.insitu import InSituConfig, InSituTrainer, Stepper
from memsim.learn.response import DEFAULT_TABLE, Grid, PulseModel, ResponseTable, pulse_transient


@pytest.fixture(scope="module")
def table():
    return ResponseTable.load(DEFAULT_TABLE)


@pytest.fixture(scope="module")
def device_model(table):
    return PulseModel(table, "device")


# -- the table against fresh transients on held-out conditions ----------------------------
# (gap m, pulse V, width s): none of them on the table's grid in any coordinate.
HELD_OUT = {
    "device": [(1.25e-9, 1.15, 35e-9), (1.45e-9, -1.05, 70e-9), (1.55e-9, -1.25, 30e-9), (1.35e-9, 0.65, 15e-9)],
    "1t1r": [(1.25e-9, 1.9, 35e-9), (1.45e-9, -1.7, 70e-9), (1.35e-9, -1.1, 30e-9)],
}


@pytest.mark.parametrize("kind", ["device", "1t1r"])
def test_pulse_model_matches_fresh_ngspice_transients(table, kind):
    model = PulseModel(table, kind)
    for gap, v, width in HELD_OUT[kind]:
        change, energy = pulse_transient(kind, gap, v, width, v_gate=model.v_gate)
        assert np.sign(change) == -np.sign(v)  # SET shrinks the gap, RESET grows it
        assert model.dgap(gap, v, width) * 1e9 == pytest.approx(change, rel=0.05), (kind, gap, v, width)
        assert model.energy(gap, v, width) == pytest.approx(energy, rel=0.05), (kind, gap, v, width)
        g = conductance(0.2, gap)
        assert model.dconductance(g, v, width) == pytest.approx(conductance(0.2, gap + change * 1e-9) - g, rel=0.05)


def test_table_grid_points_are_the_transients_and_round_trip(table, tmp_path):
    """At a grid point the table holds exactly what a fresh transient gives (the committed
    file is what scripts/pulse_response.py writes), and save/load keeps every number."""
    cell = table.cell("device")
    a, b, c = 11, 8, 2  # gap 1.3 nm, 1.1 V, 50 ns
    change, energy = pulse_transient("device", cell["gap_nm"][a] * 1e-9, -cell["amplitude_v"][b], cell["width_s"][c])
    assert change == pytest.approx(cell["reset"]["dgap_nm"][a][b][c], rel=1e-6)
    assert energy == pytest.approx(cell["reset"]["energy_j"][a][b][c], rel=1e-6)
    model = PulseModel(table, "device")
    assert model.dgap(cell["gap_nm"][a] * 1e-9, -cell["amplitude_v"][b], cell["width_s"][c]) * 1e9 == \
        pytest.approx(change, rel=1e-4)
    path = table.save(tmp_path / "copy.json")
    again = ResponseTable.load(path)
    assert again.cells == table.cells and again.params == table.params


def test_table_is_tied_to_the_model_and_the_card(table, tmp_path):
    data = table.to_dict()
    assert len(data["rram_model_sha256"]) == 64
    cell = table.cell("1t1r")
    assert cell["card"] == "nmos_level1.lib" and len(cell["card_sha256"]) == 64
    for key, value, message in (("version", 99, "version 99"), ("rram_model_sha256", "0" * 64, "another RRAM model"),
                                ("format", "x", "not a memsim pulse response table")):
        bad = dict(data, **{key: value})
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(FileError, match=message):
            ResponseTable.load(path)
    bad = json.loads(json.dumps(data))
    bad["cells"][1]["card_sha256"] = "1" * 64
    path = tmp_path / "card.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(FileError, match="another transistor card"):
        ResponseTable.load(path)


def test_pulse_model_bounds_and_bad_input(device_model):
    p = device_model.params
    # A RESET from next to the upper gap bound stops at the bound.
    assert p.gap_max - 0.001e-9 + device_model.dgap(p.gap_max - 0.001e-9, -1.4, 100e-9) <= p.gap_max
    with pytest.raises(ValueError, match=r"amplitude must lie within the table's \[0.3, 1.4\] V"):
        device_model.check(2.0, 50e-9)
    with pytest.raises(ValueError, match="pulse width must lie within"):
        device_model.check(1.0, 1e-6)
    with pytest.raises(ValueError, match="strictly increasing"):
        Grid("device", widths=(1e-9, 2e-9, 2e-9, 3e-9))
    with pytest.raises(ValueError, match="needs v_gate"):
        Grid("1t1r")


# -- the trainer's pulse bookkeeping against plain loops ---------------------------------------
def test_stepper_composes_like_one_pulse_at_a_time(device_model):
    stepper = Stepper(device_model, 1.2, 50e-9, 1.18e-9, 1.7e-9, k_max=8)
    gaps = np.linspace(1.2e-9, 1.69e-9, 40)
    counts = np.arange(40) % 21  # beyond k_max: applied in blocks
    out = stepper.apply(gaps, counts)
    for gap, n, got in zip(gaps, counts, out):
        ref = gap
        for _ in range(n):
            ref = float(np.clip(ref + device_model.dgap(ref, 1.2, 50e-9), 1.18e-9, 1.7e-9))
        assert got == pytest.approx(ref, abs=2e-14)


def _trainer(device_model, **config):
    config = dict(dict(variability=Variability(sigma_c2c=0.0, sigma_read=0.0)), **config)
    return InSituTrainer((6, 4), device_model, InSituConfig(**config))


def _brute_force_rowwise(select_set, select_reset, scheme):
    """Count every pulse event cell by cell: one SET event per row with selected SET cells, then
    one RESET event per row with selected RESET cells."""
    rows, cols = select_set.shape
    counts = {name: np.zeros((rows, cols), int) for name in ("full_set", "full_reset", "half_set", "half_reset")}
    for polarity, select in (("set", select_set), ("reset", select_reset)):
        other = "reset" if polarity == "set" else "set"
        for r in range(rows):
            if not select[r].any():
                continue
            for i in range(rows):
                for j in range(cols):
                    on_row, on_col = i == r, bool(select[r, j])
                    if on_row and on_col:
                        counts[f"full_{polarity}"][i, j] += 1
                    elif on_row or on_col:
                        counts[f"half_{polarity}"][i, j] += 1
                    elif scheme == "v/3":
                        counts[f"half_{other}"][i, j] += 1
    return counts


@pytest.mark.parametrize("scheme", ["v/2", "v/3"])
def test_rowwise_half_select_counts_match_a_plain_loop(device_model, scheme, rng):
    trainer = _trainer(device_model, scheme=scheme)
    layer = trainer.layers[0]
    select_set = rng.random((4, 7)) < 0.3
    select_reset = (rng.random((4, 7)) < 0.3) & ~select_set
    seen = {}
    layer._pulse = lambda fs, fr, hs, hr: seen.update(full_set=fs, full_reset=fr, half_set=hs, half_reset=hr)
    layer.program_rowwise(select_set, select_reset)
    expected = _brute_force_rowwise(select_set, select_reset, scheme)
    for name, value in expected.items():
        np.testing.assert_array_equal(seen[name], value, err_msg=name)


def test_stochastic_pulse_counts_match_slot_by_slot_loop(device_model):
    """The vectorised coincidence and disturb counts of one sample equal a loop over slots and
    cells with the same random bits."""
    trainer = _trainer(device_model, scheme="v/3", bl=7)
    layer = trainer.layers[0]
    xs = np.array([[0.9, -0.4, 0.0, 0.3, 1.0, -0.7, 1.0]])
    ds = np.array([[0.5, -0.8, 0.2, -0.1]])
    seen = dict.fromkeys(("full_set", "full_reset", "half_set", "half_reset"), 0)

    def record(*counts):
        for name, count in zip(("full_set", "full_reset", "half_set", "half_reset"), counts):
            seen[name] = seen[name] + (0 if count is None else count)

    layer._pulse = record
    state = trainer.rng.bit_generator.state
    layer.update_stochastic(xs, ds)
    trainer.rng.bit_generator.state = state  # the same bits again, drawn the same way
    cfg = trainer.config
    scale = math.sqrt(cfg.lr / (cfg.bl * trainer.dw_min))
    balance = math.sqrt(np.abs(ds).max() / np.abs(xs).max())
    xb = trainer.rng.random((cfg.bl, 7)) < np.minimum(np.abs(xs[0]) * scale * balance, 1)
    db = trainer.rng.random((cfg.bl, 4)) < np.minimum(np.abs(ds[0]) * scale / balance, 1)
    counts = {name: np.zeros((4, 7), int) for name in ("full_set", "full_reset", "half_set", "half_reset")}
    for slot in range(cfg.bl):
        for rs in (1, -1):
            rows = xb[slot] & (np.sign(xs[0]) == rs)
            for cs in (1, -1):
                cols = db[slot] & (np.sign(ds[0]) == cs)
                if not any(rows) or not any(cols):
                    continue
                pol = "set" if rs * cs < 0 else "reset"
                other = "reset" if pol == "set" else "set"
                for j in range(4):
                    for i in range(7):
                        if rows[i] and cols[j]:
                            counts[f"full_{pol}"][j, i] += 1
                        elif rows[i] or cols[j]:
                            counts[f"half_{pol}"][j, i] += 1
                        else:
                            counts[f"half_{other}"][j, i] += 1
    for name, value in counts.items():
        np.testing.assert_array_equal(seen[name], value, err_msg=name)


def test_stochastic_update_is_lr_x_delta_on_average(device_model):
    """Expected coincidences: bl * p_x * p_d = lr |x delta| / dw_min (probabilities below 1)."""
    trainer = _trainer(device_model, scheme="none", bl=31, lr=0.1)
    layer = trainer.layers[0]
    total = {"set": 0.0, "reset": 0.0}

    def record(fs, fr, hs, hr):
        total["set"] = total["set"] + (0 if fs is None else fs)
        total["reset"] = total["reset"] + (0 if fr is None else fr)

    layer._pulse = record
    xs = np.array([[0.2, 0.5, 1.0, 0.0, 0.1, 0.8, 1.0]])
    ds = np.array([[0.3, -0.6, 0.1, -0.05]])
    samples = 4000
    for _ in range(samples):
        layer.update_stochastic(xs, ds)
    expected = 0.1 * np.abs(ds[0][:, None] * xs[0][None, :]) / trainer.dw_min
    wanted_up = (-ds[0][:, None] * xs[0][None, :]) > 0
    mean_set = total["set"] / samples
    mean_reset = total["reset"] / samples
    assert np.all(mean_set[~wanted_up] == 0) and np.all(mean_reset[wanted_up] == 0)
    got = np.where(wanted_up, mean_set, mean_reset)
    big = expected > 0.3
    np.testing.assert_allclose(got[big], expected[big], rtol=0.08)


def test_write_verify_reaches_target_and_eapu_is_unbiased(device_model):
    # Write-verify without noise: every written cell ends within half a step of its target.
    trainer = _trainer(device_model, update="write-verify", lr=1.0, wv_max_iter=60)
    layer = trainer.layers[0]
    g0 = layer.conductance()
    x = np.ones((1, 7))
    delta = np.linspace(-0.3, 0.3, 4)[:, None].T  # (1, 4): dW rows of both signs
    layer.update_buffered(x, delta)
    want = -1.0 * delta.T @ x / trainer.config.w_max * trainer.g_half
    target = np.clip(g0 + want, *trainer.config.g_window)
    written = np.abs(want) >= trainer.g_nominal_step
    assert written.sum() >= 14
    error = target - layer.conductance()
    step = np.where(error > 0, trainer.g_step(layer.gap, "set"), trainer.g_step(layer.gap, "reset"))
    inside = written & (target < trainer.config.g_window[1] * 0.99)
    assert np.all(np.abs(error)[inside] <= 0.5 * step[inside] * (1 + 1e-9))
    assert np.abs(error)[inside].max() < 1.2 * trainer.g_nominal_step
    assert layer.counters.reads > 0 and layer.counters.full.sum() > 0
    # EaPU: the mean change over many cells equals the wanted one (no verify, no reads).
    trainer = InSituTrainer((200, 50), device_model, InSituConfig(update="eapu", scheme="none", lr=1.0,
                                                                  variability=Variability(sigma_c2c=0.02)),
                            init_weights=[np.zeros((50, 201))])
    layer = trainer.layers[0]
    g0 = layer.conductance()
    wanted = 2.5 * trainer.g_nominal_step
    layer.update_buffered(np.ones((1, 201)), np.full((1, 50), -wanted / trainer.g_half))
    change = layer.conductance() - g0
    assert layer.counters.reads == 0
    assert change.mean() == pytest.approx(wanted, rel=0.05)
    assert change.std() > 0.2 * trainer.g_nominal_step  # the noise is kept, not verified away


def test_in_situ_training_learns_digits_and_counts(device_model, digits):
    trainer = InSituTrainer((64, 32, 10), device_model, InSituConfig(seed=1))
    history = trainer.fit(digits, epochs=2)
    assert history[0]["accuracy"] < 0.3
    assert history[-1]["accuracy"] > 0.75
    record = history[-1]
    assert record["pulses"] > 0 and record["half_select_pulses"] > record["pulses"]
    assert record["energy_j"] == pytest.approx(record["energy_full_j"] + record["energy_half_j"], rel=1e-12)
    assert record["endurance"]["passing"] == record["endurance"]["devices"] == 32 * 65 + 10 * 33
    # Every weight stays in the window: conductances between the gap bound and G_hi.
    for layer in trainer.layers:
        g = layer.conductance()
        assert g.max() <= 40e-6 * (1 + 1e-9) and g.min() >= conductance(0.2, 1.7e-9)


def test_config_rejects_bad_values(device_model):
    with pytest.raises(ValueError, match="update rule"):
        InSituConfig(update="sgd")
    with pytest.raises(ValueError, match="half-select bias scheme"):
        InSituConfig(scheme="v/4")
    with pytest.raises(ValueError, match="bl must be an integer >= 1"):
        InSituConfig(bl=0)
    with pytest.raises(ValueError, match="g_window"):
        InSituConfig(g_window=(4e-5, 5e-6))
    with pytest.raises(ValueError, match="g_window"):
        InSituConfig(g_window="5e-6")
    with pytest.raises(ValueError, match="must be a memsim.devices.presets.Variability"):
        InSituConfig(variability=0.02)
    with pytest.raises(ValueError, match="amplitude must lie within"):
        InSituTrainer((4, 2), device_model, InSituConfig(v_set=1.6))
    with pytest.raises(ValueError, match="configuration asks for '1t1r'"):
        InSituTrainer((4, 2), device_model, InSituConfig(kind="1t1r"))
    assert gap_for_conductance(40e-6) < 1.7e-9


# -- energy of a pulse in an array ---------------------------------------------------------------
def test_array_pulse_energy_solver_matches_ngspice(device_model):
    """The fast solver's array-over-cells energy factor at the pulse's flat top equals
    ngspice's transient energy over the response table's cell energies, on a 4 x 4 array with
    wires; the IR drop makes it below 1."""
    from memsim.learn import energy

    gap = float(gap_for_conductance(22.5e-6))
    for scheme in ("v/2", "v/3"):
        spice = energy.spice_factor(4, gap, 1.1, 50e-9, device_model, r_wire=2.5, scheme=scheme)
        solver = energy.solver_pulse_power(4, gap, 1.1, r_wire=2.5, scheme=scheme)
        assert solver["factor"] == pytest.approx(spice, rel=0.01), scheme
        assert 0.9 < solver["factor"] < 1.0
    no_wires = energy.solver_pulse_power(4, gap, 1.1, r_wire=1e-3)
    assert no_wires["factor"] == pytest.approx(1.0, abs=1e-3)


def test_import_is_cheap():
    import os
    import subprocess
    import sys

    code = ("import sys, memsim; memsim.learn.__all__; import memsim.learn; "
            "print([m for m in ('scipy', 'torch', 'numba', 'memsim.learn.insitu') if m in sys.modules])")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
