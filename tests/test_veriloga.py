"""Verilog-A devices: compiled with OpenVAF, evaluated through OSDI, in ngspice and the fast solver.

The model under test is the Stanford-PKU read current written in Verilog-A with the gap (nm) as
its state node, so every number has a closed form in memsim.devices.rram; its rate is a simple
k sinh(V) whose integral over a pulse has a closed form too.
"""
import math
import pickle

import numpy as np
import pytest

import memsim
from memsim.circuit import netlist, spice
from memsim.circuit.array import Crossbar
from memsim.devices import VerilogA, VerilogAError, rram

SOURCE = """`include "disciplines.vams"
// Stanford-PKU read current (Jiang et al., IEEE TED 2016); state: the gap in nm
module pku_read(p, n, s);
inout p, n, s;
electrical p, n, s;
parameter real i0 = 1e-3 from (0:1];
parameter real g0 = 0.25 from (0:10];
parameter real v0 = 0.25 from (0:10];
parameter real k = 1e7 from [0:inf);
parameter real state_min = 0.1;
parameter real state_max = 1.7;
analog begin
  I(p, n) <+ i0 * exp(-V(s) / g0) * sinh(V(p, n) / v0);
  I(s) <+ ddt(V(s));
  I(s) <+ k * sinh(V(p, n));
end
endmodule
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("va-cache")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("va") / "pku_read.va"
    path.write_text(SOURCE)
    return path


@pytest.fixture(scope="module")
def device(model_file, cache):
    return VerilogA(model_file, cache_dir=cache)


def write(tmp_path, text, name="m.va"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_compiled_model_matches_the_closed_form(device):
    v = np.linspace(-1.0, 1.0, 41)[None, :]
    gap_nm = np.linspace(0.1, 1.7, 9)[:, None]
    i, g, rate = device.evaluate(v, gap_nm)
    expected = rram.current(v, gap_nm * 1e-9)
    assert np.max(np.abs(i - expected) / np.maximum(np.abs(expected), 1e-300)) < 1e-12
    slope = rram.dcurrent_dv(v, gap_nm * 1e-9)
    assert np.max(np.abs(g - slope) / slope) < 1e-12
    np.testing.assert_allclose(rate, -1e7 * np.sinh(v) * np.ones_like(gap_nm), rtol=1e-13, atol=1e-9)
    assert device.params["g0"] == 0.25 and device.state_bounds == (0.1, 1.7)


def test_parameters_reach_the_model(model_file, cache):
    dev = VerilogA(model_file, params={"g0": 0.3, "i0": 2e-3}, cache_dir=cache)
    expected = rram.current(0.2, 1e-9, rram.RRAMParams(g0=0.3e-9, i0=2e-3))
    assert dev.current(0.2, 1.0) == pytest.approx(expected, rel=1e-13)


def test_table_error_is_measured_and_holds_off_grid(device):
    table = device.table()
    assert table.error < device.tol
    rng = np.random.default_rng(1)
    v = rng.uniform(-1, 1, 500)
    s = rng.uniform(0.1, 1.7, 500)
    i_tab, g_tab = table.interpolate(v, s)
    i, g, _ = device.evaluate(v, s)
    scale = np.maximum(np.abs(i), 1e-6 * np.abs(device.current(1.0, s)))
    assert np.max(np.abs(i_tab - i) / scale) < 2 * device.tol
    assert np.max(np.abs(g_tab - g) / g) < 1e-5
    # Beyond the voltage range the table continues along its end tangent.
    i_end, g_end = table.interpolate(np.array([1.0, 1.1]), np.array([1.0, 1.0]))
    assert i_end[1] == pytest.approx(i_end[0] + 0.1 * g_end[0], rel=1e-12)


def test_state_for_conductance_inverts_the_read(device):
    g = np.array([1e-5, 5e-5, 1e-3])
    state = device.state_for_conductance(g, 0.2)
    np.testing.assert_allclose(state, rram.gap_for_conductance(g, 0.2) * 1e9, rtol=1e-9)
    with pytest.raises(ValueError, match="must lie in"):
        device.state_for_conductance([1.0], 0.2)


@pytest.mark.parametrize("kind", ["device", "1t1r"])
def test_both_engines_agree_with_the_builtin_model(device, kind):
    rng = np.random.default_rng(2)
    gap = rng.uniform(0.2e-9, 1.6e-9, (12, 12))
    v = rng.uniform(0.0, 0.5, 12)
    builtin = Crossbar.of_kind(kind, gap=gap, r_row=2.5, r_col=2.5)
    va = Crossbar.of_kind(kind, gap=gap * 1e9, r_row=2.5, r_col=2.5, params=device)
    reference = spice.simulate(builtin, v).i_col
    full_scale = np.max(np.abs(reference))
    osdi = spice.simulate(va, v, cells=True)
    assert np.max(np.abs(osdi.i_col - reference)) / full_scale < 1e-9
    fast = memsim.solve(va, v, cells=True)
    # The solver reads the table: its error is the table's, measured, not the solver's.
    assert np.max(np.abs(fast.i_col - osdi.i_col)) / full_scale < 10 * device.table().error
    assert np.max(np.abs(fast.i_cell - osdi.i_cell)) < 1e-7 * np.max(np.abs(osdi.i_cell))


def test_same_cells_by_conductance(device):
    g = np.full((3, 3), 1e-5)
    va = Crossbar.device(g_read=g, params=device)
    np.testing.assert_allclose(va.conductance(0.2), g, rtol=1e-9)


def test_programming_transient_follows_the_rate(device):
    """One cell, ideal wires: the state moves by -k times the integral of sinh(V) over the
    trapezoidal pulse, a closed form."""
    xb = Crossbar.device(gap=[[1.0]], r_row=0.0, r_col=0.0, params=device)
    v_pulse, t_pulse, t_edge = 0.05, 50e-9, 1e-9
    out = spice.simulate_program(xb, 0, 0, v_pulse, t_pulse, t_edge=t_edge, scheme="floating")
    integral = t_pulse * math.sinh(v_pulse) + 2 * t_edge / v_pulse * (math.cosh(v_pulse) - 1)
    expected = 1.0 - 1e7 * integral
    assert out.gap_initial[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert out.gap_final[0, 0] == pytest.approx(expected, rel=1e-4)


def test_netlist_loads_the_compiled_model(device):
    xb = Crossbar.device(gap=[[1.0, 1.5]], params=device)
    text = netlist.mvm(xb, [0.2])
    assert f"pre_osdi {device.osdi_path.resolve()}" in text
    assert "nd0_1 r0_1 c0_1 x0_1 va_pku_read" in text and "vx0_1 x0_1 0 1.5" in text


def test_compiled_once_and_pickled_by_source(model_file, cache, device):
    stamp = device.osdi_path.stat().st_mtime_ns
    again = VerilogA(model_file, cache_dir=cache)
    assert again.osdi_path == device.osdi_path and again.osdi_path.stat().st_mtime_ns == stamp
    clone = pickle.loads(pickle.dumps(device))
    assert clone.current(0.3, 0.7) == device.current(0.3, 0.7)


def test_solver_refuses_drives_beyond_the_table(device):
    xb = Crossbar.device(gap=[[1.0]], params=device)
    with pytest.raises(ValueError, match=r"beyond the \+/-1 V that the pku_read table covers"):
        memsim.solve(xb, [1.5])


@pytest.mark.parametrize("edit, message", [
    (("I(s) <+ k * sinh(V(p, n));", "I(s) <+ k * sinh(V(p, n)) * foo;"), r"m\.va: line 15: OpenVAF: 'foo' was not found"),
    (("I(s) <+ ddt(V(s));", "I(s) <+ -idt(V(p, n), 1.0);"), r"m\.va:14: idt is not supported: .*write the state as a node"),
    (("I(s) <+ k * sinh(V(p, n));", "I(s) <+ k * $rdist_normal(1, 0, 1);"), r"m\.va:15: \$rdist_normal is not supported"),
    (("module pku_read(p, n, s);", "module pku_read(p, n, s, t);"), "terminals \\(p, n, s, t\\); a memsim device has three"),
    (("parameter real state_max = 1.7;", ""), "declares no parameter state_max"),
    (("I(s) <+ ddt(V(s));", "I(s) <+ ddt(V(s)); I(p, n) <+ ddt(1e-15 * V(p, n));"), "exactly I\\(s\\) <\\+ ddt\\(V\\(s\\)\\)"),
])
def test_bad_sources_are_one_line(tmp_path, cache, edit, message):
    text = SOURCE.replace(*edit)
    if "t);" in edit[1]:
        text = text.replace("electrical p, n, s;", "electrical p, n, s, t;").replace("inout p, n, s;", "inout p, n, s, t;")
    with pytest.raises(VerilogAError, match=message) as err:
        VerilogA(write(tmp_path, text), cache_dir=cache)
    assert "\n" not in str(err.value)


def test_bad_parameters_and_modules(tmp_path, model_file, cache):
    with pytest.raises(VerilogAError, match=r"g0 must lie in \(0:10\]"):
        VerilogA(model_file, params={"g0": 20.0}, cache_dir=cache)
    with pytest.raises(VerilogAError, match="has no parameter 'gap'; it has"):
        VerilogA(model_file, params={"gap": 1.0}, cache_dir=cache)
    with pytest.raises(ValueError, match="must be a real number"):
        VerilogA(model_file, params={"g0": "0.3"}, cache_dir=cache)
    two = write(tmp_path, SOURCE + SOURCE.replace("pku_read", "other").split("\n", 1)[1], "two.va")
    with pytest.raises(VerilogAError, match="defines modules pku_read, other: choose one"):
        VerilogA(two, cache_dir=cache)
    assert VerilogA(two, module="other", cache_dir=cache).module == "other"
    with pytest.raises(VerilogAError, match="no such file|does not exist|not found"):
        VerilogA(tmp_path / "missing.va", cache_dir=cache)
    with pytest.raises(ValueError, match="state of pku_read must lie within"):
        Crossbar.device(gap=[[3.0]], params=VerilogA(model_file, cache_dir=cache))


@pytest.mark.parametrize("cells", ["device", "1t1r"])
def test_tiles_of_a_verilog_a_device_match_the_builtin_model(device, cells):
    """The same layer on tiles of the compiled model and of the built-in one (the same
    equations): the batched model reads the table, so they agree to the table's error."""
    torch = pytest.importorskip("torch")
    from memsim.nn import HardwareConfig, convert

    torch.manual_seed(0)
    layer = torch.nn.Linear(20, 6).double()
    x = torch.rand(5, 20, dtype=torch.float64)
    options = dict(tile=16, cells=cells, r_wire=2.5, dtype="float64", conductances="analog", verify_1t1r=False)
    with torch.no_grad():
        builtin = convert(layer, HardwareConfig(**options))(x)
        va = convert(layer, HardwareConfig(**options, device=device))(x)
        exact = convert(layer, HardwareConfig(**options, device=device, exact=True))(x)
    scale = float(builtin.abs().max())
    assert float((va - builtin).abs().max()) / scale < 1e-5
    assert float((va - exact).abs().max()) / scale < 1e-3  # the batched model's own tolerance


def test_hardware_config_takes_only_devices(device):
    from memsim.nn import HardwareConfig

    with pytest.raises(ValueError, match="device must be a memsim.devices.RRAMParams, a memsim.devices.VerilogA"):
        HardwareConfig(cells="device", device="pku.va")
    with pytest.raises(ValueError, match="ohmic cells have no compact model"):
        HardwareConfig(cells="ohmic", device=device)


def test_cli_runs_a_verilog_a_device(tmp_path, model_file, capsys, monkeypatch):
    from memsim.cli import main

    monkeypatch.chdir(tmp_path)  # the compiled model's cache goes under ./memsim_output
    base = ["--kind", "device", "--rows", "6", "--cols", "5", "--device", str(model_file), "--param", "g0=0.24"]
    assert main(["simulate", *base, "--engine", "ngspice"]) == 0
    spice_out = capsys.readouterr().out
    assert main(["simulate", *base, "--engine", "solver"]) == 0
    solver_out = capsys.readouterr().out
    read = lambda text: np.array([float(line.split(",")[1]) for line in text.strip().splitlines()[1:]])
    np.testing.assert_allclose(read(solver_out), read(spice_out), rtol=1e-6)
    assert read(spice_out).shape == (5,)
    assert main(["netlist", *base[:6], "--device", str(model_file), "--param", "g0"]) == 2
    assert "--param takes NAME=VALUE" in capsys.readouterr().err
    assert main(["netlist", "--kind", "device", "--param", "g0=1"]) == 2
    assert "give --device MODEL.va" in capsys.readouterr().err


def test_calibrate_reports_a_device_table(tmp_path, model_file, capsys, monkeypatch):
    import json

    from memsim.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--device", str(model_file), "--sizes", "8", "--out", str(tmp_path / "cal")]) == 0
    out = capsys.readouterr().out
    assert "relative error" in out and "wrote" in out
    report = json.loads((tmp_path / "cal" / "device_report.json").read_text())
    assert len(report["cases"]) == 6 and report["table_error"] < 1e-7
    assert max(case["error"] for case in report["cases"]) < 1e-6


def test_a_read_curve_that_starts_at_zero(tmp_path, cache):
    """A model whose conductance is 0 at one end of its state range (a fully dissolved
    filament) still maps conductances to states over the rest; g_range gives the positive part."""
    text = SOURCE.replace("i0 * exp(-V(s) / g0) * sinh(V(p, n) / v0)", "i0 * (1.7 - V(s)) * sinh(V(p, n) / v0)")
    dev = VerilogA(write(tmp_path, text, "zero.va"), cache_dir=cache)
    lo, hi = dev.g_range(0.2)
    assert hi == pytest.approx(1e-3 * 1.6 * math.sinh(0.8) / 0.2, rel=1e-12) and 0 < lo < hi
    state = dev.state_for_conductance([hi / 2], 0.2)
    assert 1.7 - state[0] == pytest.approx(0.8, rel=1e-6)


def test_internal_nodes_are_solved(tmp_path, cache):
    """A series resistance inside the model (an internal node): the current solves
    V = I rs + v0 asinh(I / (i0 exp(-s/g0))) (scipy's root finder is the reference), the slope is
    the series combination, and the solver agrees with ngspice on an array of such cells."""
    from scipy.optimize import brentq

    text = SOURCE.replace("electrical p, n, s;", "electrical p, n, s, m;\nparameter real rs = 2e3 from [0:inf);").replace(
        "I(p, n) <+ i0 * exp(-V(s) / g0) * sinh(V(p, n) / v0);",
        "I(p, m) <+ V(p, m) / rs;\n  I(m, n) <+ i0 * exp(-V(s) / g0) * sinh(V(m, n) / v0);")
    dev = VerilogA(write(tmp_path, text, "series.va"), cache_dir=cache, tol=1e-5)
    for v, s in ((0.3, 0.5), (-0.7, 1.2), (1.0, 0.1)):
        scale = 1e-3 * math.exp(-s / 0.25)
        i_ref = brentq(lambda i: i * 2e3 + 0.25 * math.asinh(i / scale) - v, -1.0, 1.0, xtol=1e-300, rtol=1e-15)
        i, g, _ = dev.evaluate(v, s)
        assert float(i) == pytest.approx(i_ref, rel=1e-10)
        v_dev = v - i_ref * 2e3
        g_dev = scale / 0.25 * math.cosh(v_dev / 0.25)
        assert float(g) == pytest.approx(1 / (2e3 + 1 / g_dev), rel=1e-8)
    rng = np.random.default_rng(4)
    xb = Crossbar.device(gap=rng.uniform(0.2, 1.6, (8, 8)), r_row=2.5, r_col=2.5, params=dev)
    v_in = rng.uniform(0, 0.6, 8)
    ref = spice.simulate(xb, v_in).i_col
    assert np.max(np.abs(memsim.solve(xb, v_in).i_col - ref)) / np.max(np.abs(ref)) < 10 * dev.table().error
