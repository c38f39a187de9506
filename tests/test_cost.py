"""memsim.cost: array energy against closed forms and ngspice's own source currents, line
settling against ngspice transients, converter figures, and network totals on cases with a
closed form."""
import math
import shutil

import numpy as np
import pytest

import memsim
from memsim.cost import CostConfig, array, latency, pareto, periphery

HAVE_NGSPICE = shutil.which("ngspice") is not None
needs_ngspice = pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed")


# -- array energy ---------------------------------------------------------------------------
def test_one_cell_power_is_v_squared_over_the_series_resistance():
    g, r_row, r_col, v = 1e-4, 3.0, 7.0, 0.2
    xb = memsim.Crossbar.ohmic(np.array([[g]]), r_row=r_row, r_col=r_col)
    expected = v * v / (r_row + 1.0 / g + r_col)
    assert array.read_power(xb, np.array([v]))[0] == pytest.approx(expected, rel=1e-9)
    cfg = CostConfig(read_time_s=5e-9)
    assert array.read_energy(xb, np.array([v]), cfg)[0] == pytest.approx(expected * 5e-9, rel=1e-9)


def test_single_row_line_against_the_discrete_ladder_closed_form():
    # One row of n cells g to grounded columns (r_col = 0), segments r: the node voltages are
    # A cosh(theta (n + 1/2 - k)), cosh(theta) = 1 + r g / 2 (open end: v_{n+1} = v_n).
    n, r, g, v = 32, 2.5, 1e-3, 0.3
    xb = memsim.Crossbar.ohmic(np.full((1, n), g), r_row=r, r_col=0.0)
    theta = math.acosh(1.0 + r * g / 2.0)
    a = v / math.cosh(theta * (n + 0.5))
    i_in = a * (math.cosh(theta * (n + 0.5)) - math.cosh(theta * (n - 0.5))) / r
    assert array.read_power(xb, np.array([v]))[0] == pytest.approx(v * i_in, rel=1e-9)


def test_source_power_is_cell_dissipation_plus_wire_losses(rng):
    # Tellegen: what the sources deliver is what the cells and the wires dissipate.
    g = rng.uniform(1e-6, 1e-4, (12, 9))
    r_row, r_col = 4.0, 6.0
    xb = memsim.Crossbar.ohmic(g, r_row=r_row, r_col=r_col)
    v = rng.uniform(0.0, 0.2, 12)
    res = memsim.solve(xb, v, voltages=True)
    cells = np.sum(g * (res.v_row - res.v_col) ** 2)
    row_wires = np.sum((np.diff(np.concatenate([v[:, None], res.v_row], axis=1), axis=1)) ** 2) / r_row
    col_nodes = np.concatenate([res.v_col, np.zeros((1, 9))], axis=0)
    col_wires = np.sum(np.diff(col_nodes, axis=0) ** 2) / r_col
    assert array.read_power(xb, v)[0] == pytest.approx(cells + row_wires + col_wires, rel=1e-9)


@needs_ngspice
def test_read_power_matches_ngspice_source_currents_on_64x64_with_ir_drop(rng):
    g = rng.uniform(1e-6, 1e-4, (64, 64))
    xb = memsim.Crossbar.ohmic(g, r_row=2.5, r_col=2.5)
    v = rng.uniform(0.0, 0.2, (2, 64))
    ref = memsim.simulate(xb, v).info["source_power"]
    mine = array.read_power(xb, v)
    ideal = np.sum(v * v * g.sum(axis=1), axis=1)
    assert np.all(np.abs(mine / ideal - 1) > 0.01)  # the wires matter here: a test that can fail
    np.testing.assert_allclose(mine, ref, rtol=1e-2)
    np.testing.assert_allclose(mine, ref, rtol=1e-6)  # measured: the two engines agree to ~1e-9


@needs_ngspice
def test_read_power_matches_ngspice_for_selectorless_cells(rng):
    g = rng.uniform(1e-5, 1e-4, (12, 10))
    xb = memsim.Crossbar.device(g_read=g, r_row=2.0, r_col=2.0)
    v = rng.uniform(-0.3, 0.3, 12)
    ref = memsim.simulate(xb, v).info["source_power"]
    assert array.read_power(xb, v)[0] == pytest.approx(ref, rel=1e-5)


def test_cell_footprints():
    cfg = CostConfig(feature_m=40e-9)
    xb = memsim.Crossbar.ohmic(np.full((8, 4), 1e-5))
    assert array.array_area(xb, cfg) == pytest.approx(32 * 4 * (40e-9) ** 2)
    one_t = memsim.Crossbar.one_t_one_r(g_read=np.full((2, 2), 1e-5))
    h, w = array.cell_size(one_t, cfg)
    assert h == pytest.approx(4 * 40e-9)
    assert w == pytest.approx(12 * 40e-9 + one_t.transistor.w - 40e-9)


def test_line_charge_energy_is_c_v_squared():
    cfg = CostConfig(feature_m=50e-9, c_wire_per_m=1e-10, eps_r=10.0, t_oxide_m=4e-9)
    xb = memsim.Crossbar.ohmic(np.full((2, 3), 1e-5))
    c_node = 1e-10 * 100e-9 + 8.8541878128e-12 * 10.0 * (50e-9) ** 2 / 4e-9
    assert array.node_capacitance(xb, cfg)[0] == pytest.approx(c_node)
    energy = array.line_charge_energy(xb, np.array([0.2, 0.1]), cfg)[0]
    assert energy == pytest.approx(3 * c_node * (0.04 + 0.01))


# -- line settling --------------------------------------------------------------------------
def test_elmore_delay_closed_forms():
    assert latency.elmore_delay(1, 10.0, 2e-15, 5.0) == pytest.approx(15.0 * 2e-15)
    # sum over segments k = 1..n of r (n - k + 1) c
    n, r, c = 7, 3.0, 1e-15
    assert latency.elmore_delay(n, r, c) == pytest.approx(sum(r * (n - k + 1) * c for k in range(1, n + 1)))


def test_one_node_settles_as_one_pole():
    tau = (10.0 + 5.0) * 2e-15
    assert latency.settling_time(1, 10.0, 2e-15, 5.0, fraction=1e-3) == pytest.approx(tau * math.log(1e3), rel=1e-9)
    assert latency.settling_time(50, 0.0, 1e-15, 100.0, fraction=0.01) == pytest.approx(
        100.0 * 50e-15 * math.log(100.0), rel=1e-12)
    assert latency.settling_time(50, 0.0, 1e-15) == 0.0


@needs_ngspice
@pytest.mark.parametrize("n, r, c, rs", [(64, 2.5, 0.1e-15, 0.0), (128, 1.0, 0.2e-15, 500.0)])
def test_settling_and_elmore_against_an_ngspice_transient(n, r, c, rs):
    elmore = latency.elmore_delay(n, r, c, rs)
    settle = latency.settling_time(n, r, c, rs, fraction=1e-3)
    t_rise = elmore * 1e-4
    t, v = latency.spice_step(n, r, c, rs, t_stop=1.5 * settle, t_rise=t_rise)
    # The Elmore delay is the step response's first moment: the area above it, less the ramp's half.
    spice_elmore = np.trapezoid(1.0 - v, t) - t_rise / 2
    outside = np.nonzero(np.abs(1.0 - v) > 1e-3)[0][-1]
    spice_settle = np.interp(1e-3, [1 - v[outside], 1 - v[outside + 1]][::-1], [t[outside + 1], t[outside]]) - t_rise / 2
    assert elmore == pytest.approx(spice_elmore, rel=0.10)
    assert settle == pytest.approx(spice_settle, rel=0.10)
    assert settle == pytest.approx(spice_settle, rel=0.01)  # measured: within 0.1 %


def test_line_netlist_numbers_are_formatted_and_checked():
    text = latency.line_netlist(2, 1e6, 1e-15, t_stop=1e-6, t_rise=1e-9)
    assert "r1 n0 n1 1000000.0" in text and "c2 n2 0 1e-15" in text
    with pytest.raises(ValueError, match="c_farad"):
        latency.line_netlist(2, 1.0, float("nan"), t_stop=1e-6, t_rise=1e-9)
    with pytest.raises(ValueError, match="n \\(nodes"):
        latency.elmore_delay(0, 1.0, 1e-15)


# -- periphery ------------------------------------------------------------------------------
def test_adc_figures():
    sar = CostConfig(fom_walden_j=4e-15, clock_hz=2e9)
    assert periphery.adc_energy(8, sar) == pytest.approx(4e-15 * 256)
    assert periphery.adc_time(8, sar) == pytest.approx(4e-9)
    flash = CostConfig(adc_kind="flash", comparator_j=30e-15, comparator_area_f2=1000.0, feature_m=20e-9)
    assert periphery.adc_energy(4, flash) == pytest.approx(15 * 30e-15)
    assert periphery.adc_time(4, flash) == pytest.approx(1e-9)
    assert periphery.adc_area(4, flash) == pytest.approx(15 * 1000.0 * 400e-18)
    ramp = CostConfig(adc_kind="ramp")
    assert periphery.adc_time(6, ramp) == pytest.approx(64e-9)
    # Liu et al. 2010's 10-bit SAR: 0.052 mm^2 at 130 nm
    assert periphery.adc_area(10, CostConfig(feature_m=130e-9)) == pytest.approx(0.052e-6)
    assert periphery.adcs_per_tile(17, CostConfig(cols_per_adc=8)) == 3


@pytest.mark.parametrize("changes, match", [
    ({"feature_m": 0.0}, "feature_m must be > 0"), ({"adc_kind": "pipeline"}, "adc_kind must be one of"),
    ({"adc_bits": 0}, "adc_bits must be an integer"), ({"settle_fraction": 1.0}, "settle_fraction"),
    ({"read_time_s": float("inf")}, "read_time_s must be a finite"), ({"cols_per_adc": 2.5}, "cols_per_adc"),
    ({"v_read": True}, "v_read must be a real number")])
def test_config_refuses_bad_values_in_one_line(changes, match):
    with pytest.raises(ValueError, match=match):
        CostConfig().replace(**changes)


# -- Pareto front ---------------------------------------------------------------------------
def _dominated_brute_force(cost, benefit):
    n = len(cost)
    return np.array([any(cost[q] <= cost[p] and benefit[q] >= benefit[p] and (cost[q], benefit[q]) != (cost[p], benefit[p])
                         for q in range(n)) for p in range(n)])


@pytest.mark.parametrize("n, spread", [(1, 5), (7, 3), (60, 4), (200, 50), (300, 1000)])
def test_pareto_front_against_every_pair(rng, n, spread):
    # small integer grids make ties in cost, in benefit and whole duplicate points
    cost = rng.integers(0, spread, n).astype(float)
    benefit = rng.integers(0, spread, n).astype(float)
    front = pareto.pareto_front(cost, benefit)
    np.testing.assert_array_equal(front, ~_dominated_brute_force(cost, benefit))
    assert front.any()


def test_pareto_front_refuses_bad_input_in_one_line():
    with pytest.raises(ValueError, match="finite") as err:
        pareto.pareto_front([1.0, float("nan")], [0.5, 0.6])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        pareto.pareto_front([1.0, 2.0], [0.5])


# -- network --------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def _linear_model(inputs=6, outputs=3):
    from memsim import nn as mnn

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(inputs, outputs, bias=False)).double()
    return model, mnn


def test_network_array_energy_on_ideal_wires_is_the_sum_of_v_squared_g():
    model, mnn = _linear_model()
    config = mnn.HardwareConfig(tile=16, r_wire=0.0, v_read=0.25, dtype="float64")
    analog = mnn.convert(model, config, seed=0)
    x = torch.rand(4, 6, dtype=torch.float64) - 0.3
    cfg = CostConfig(read_time_s=20e-9)
    table = memsim.cost.network_cost(analog, x, cfg)
    (tile,) = analog.tiles()
    g = tile.g.numpy()
    v = (x / x.abs().max(dim=1, keepdim=True).values * 0.25).numpy()
    expected = np.mean(np.sum(v * v * g.sum(axis=1), axis=1)) * 20e-9
    row = table.rows[0]
    assert row["array_j"] == pytest.approx(expected, rel=1e-9)
    assert row["ops"] == pytest.approx(2 * 6 * 3) and row["reads"] == pytest.approx(1)
    assert row["adc_j"] == pytest.approx(3 * periphery.adc_energy(8, cfg))
    assert table.total["energy_j"] == pytest.approx(row["array_j"] + row["dac_j"] + row["adc_j"] + row["digital_j"])
    assert table.total["tops_per_w"] == pytest.approx(36 / table.total["energy_j"] / 1e12)
    assert "total" in table.format()


def test_bit_serial_reads_once_per_input_bit_and_takes_the_model_adc_bits():
    model, mnn = _linear_model()
    config = mnn.HardwareConfig(tile=16, inputs="bit-serial", dac_bits=4, adc_bits=6, adc_range=10.0, dtype="float64")
    analog = mnn.convert(model, config, seed=0)
    table = memsim.cost.network_cost(analog, torch.rand(3, 6, dtype=torch.float64))
    assert table.adc_bits == 6
    assert table.rows[0]["reads"] == pytest.approx(4)
    assert table.rows[0]["adc_j"] == pytest.approx(4 * 3 * periphery.adc_energy(6, CostConfig()))


def test_network_cost_refuses_what_is_not_a_converted_model():
    with pytest.raises(ValueError, match="converted model"):
        memsim.cost.network_cost(torch.nn.Linear(2, 2), torch.zeros(1, 2))


def test_memsim_infer_cost_prints_the_table_beside_accuracy(capsys, tmp_path):
    pytest.importorskip("sklearn")
    from memsim.cli import main

    assert main(["infer", "--images", "20", "--cost", "--r-wire", "1", "--no-progress", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy %" in out and "TOPS/W" in out
    total = [line for line in out.splitlines() if line.startswith("total")]
    assert len(total) == 1
    energy_nj = float(total[0].split()[7])
    assert 0 < energy_nj < 1e3


def test_pwm_read_energy_on_ideal_wires_is_v_squared_g_times_the_on_time(rng):
    g = rng.uniform(1e-6, 25e-6, (16, 8))
    xb = memsim.Crossbar.ohmic(g, r_row=0.0, r_col=0.0)
    x = rng.uniform(-1.0, 1.0, (3, 16))
    cfg = CostConfig(read_time_s=128e-9)
    on = np.rint(np.abs(x) / np.abs(x).max(axis=1, keepdims=True) * 128) / 128
    expected = np.sum(0.2 ** 2 * g.sum(axis=1) * on, axis=1) * 128e-9
    np.testing.assert_allclose(array.pwm_read_energy(xb, x, 0.2, 128, cfg), expected, rtol=1e-9)
    # with wires, the rows on at once share the IR drop: less power than the ideal sum
    wired = xb.with_wires(5.0, 5.0)
    assert np.all(array.pwm_read_energy(wired, x, 0.2, 128, cfg) < expected)


def test_network_cost_refuses_bad_example_inputs_in_one_line():
    model, mnn = _linear_model()
    analog = mnn.convert(model, mnn.HardwareConfig(tile=16, dtype="float64"), seed=0)
    with pytest.raises(ValueError, match="x_example must be"):
        memsim.cost.network_cost(analog, "images")
    with pytest.raises(ValueError, match="non-empty"):
        memsim.cost.network_cost(analog, np.zeros((0, 6)))
    with pytest.raises(ValueError, match="CostConfig"):
        memsim.cost.network_cost(analog, np.zeros((1, 6)), {"adc_bits": 4})


def test_network_cost_refuses_unbounded_work_before_solving(monkeypatch):
    from memsim.cost import network
    from memsim.errors import ResourceLimitError

    model, mnn = _linear_model()
    analog = mnn.convert(model, mnn.HardwareConfig(tile=16, dtype="float64"), seed=0)
    monkeypatch.setattr(network, "MAX_VECTORS", 10)
    with pytest.raises(ResourceLimitError, match="network_cost: 11 tile input vectors asked, at most 10"):
        network.network_cost(analog, np.ones((11, 6)))


# -- the network_cost study metric -----------------------------------------------------------
def test_network_cost_metric_agrees_with_network_cost_called_directly(tmp_path):
    pytest.importorskip("sklearn")
    from memsim import nn as mnn
    from memsim import study
    from memsim.experiments import trained

    config = {"name": "cost", "metrics": ["network_cost"],
              "grid": {"tile": [32], "r_wire": [2.5], "adc_bits": [4, 6], "cell": ["ohmic"]},
              "options": {"network": "mlp-digits", "network_samples": 60, "cost_samples": 3, "read_time": 20e-9}}
    first = study.run(config, out=tmp_path, workers=1, progress=False)
    rows = {r["adc_bits"]: r for r in study.read_results(first.path)}
    again = study.run(config, out=tmp_path, workers=1, progress=False)  # resumes: nothing left to compute
    assert (first.computed, again.computed, again.already_done) == (2, 0, 2)
    assert all(r["error"] is None for r in rows.values())

    # the same point built here from the public API, not from the metric's code
    model, data = trained("mlp-digits", 0)
    hw = mnn.HardwareConfig(tile=32, conductances="rram8", cells="ohmic", r_wire=2.5, v_read=0.2, adc_bits=4,
                            dtype="float64")
    analog = mnn.convert(model, hw, seed=0, calibration_x=data.x_train[:256])
    total = memsim.cost.network_cost(analog, data.x_test[:3], CostConfig(adc_bits=4, read_time_s=20e-9)).total
    row = rows[4]
    for column, key in (("energy_J", "energy_j"), ("array_energy_J", "array_j"), ("dac_energy_J", "dac_j"),
                        ("adc_energy_J", "adc_j"), ("digital_energy_J", "digital_j"), ("latency_s", "latency_s"),
                        ("area_m2", "area_m2"), ("tops_per_w", "tops_per_w"), ("tops_per_mm2", "tops_per_mm2")):
        assert math.isfinite(row[column]) and row[column] > 0, column
        assert row[column] == pytest.approx(total[key], rel=1e-12), column
    # a 32 x 32 tile holds 32 inputs x 16 outputs: 64-64 on 2 x 4 tiles, 64-10 on 2 x 1
    assert row["tiles"] == total["tiles"] == 10
    assert row["accuracy"] == pytest.approx(analog.accuracy(data.x_test[:60], data.y_test[:60]), abs=1e-12)
    # SAR energy is FoM 2^bits per conversion, the reads are the same: 6 bits cost 4x the ADC energy of 4 bits
    assert rows[6]["adc_energy_J"] == pytest.approx(4 * rows[4]["adc_energy_J"], rel=1e-12)
    assert rows[6]["array_energy_J"] == pytest.approx(rows[4]["array_energy_J"], rel=1e-12)


@pytest.mark.parametrize("changes, match", [
    ({"grid": {"adc_bits": [0]}}, r"grid.adc_bits\[0\]: ADC resolution must be an integer number of bits in \[1, 16\]"),
    ({"grid": {"adc_bits": [4, 4.5]}}, r"grid.adc_bits\[1\]: ADC resolution"),
    ({"grid": {"adc_bits": [True]}}, r"grid.adc_bits\[0\]: ADC resolution"),
    ({"grid": {"adc_bits": [17]}}, r"grid.adc_bits\[0\]: ADC resolution"),
    ({"options": {"adc_kind": "delta-sigma"}}, "options.adc_kind must be one of sar, flash, ramp"),
    ({"options": {"cost_samples": 0}}, r"options.cost_samples must lie in \[1, 1000\]"),
    ({"metrics": ["tile"], "grid": {"adc_bits": [4, 8]}}, "grid.adc_bits has 2 values but none of the metrics"),
])
def test_network_cost_config_errors_are_one_line(changes, match):
    from memsim import study

    config = {"name": "cost", "metrics": ["network_cost"], **changes}
    with pytest.raises(ValueError, match=match) as err:
        study.load(config)
    assert "\n" not in str(err.value)


def test_network_cost_refuses_odd_tiles_before_computing():
    from memsim import study

    with pytest.raises(ValueError, match="network_cost needs even tile sizes"):
        study.expand(study.load({"name": "cost", "metrics": ["network_cost"], "grid": {"tile": [33]}}))
