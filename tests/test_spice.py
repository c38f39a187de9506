"""Real ngspice runs against closed forms, the scipy reference and the device equations."""
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import memsim
from memsim import devices
from memsim.circuit import spice
from memsim.circuit.bias import mvm_bias
from memsim.solver.reference import reference_solve_bias


def test_single_device_cell_equals_model_equation():
    gap = devices.gap_for_conductance(np.array([[20e-6]]), 0.2)
    xb = memsim.Crossbar.device(gap, r_row=0.0, r_col=0.0)
    for v in (-0.6, -0.2, 0.05, 0.2, 0.6):
        i_spice = spice.simulate(xb, [v]).i_col[0]
        assert i_spice == pytest.approx(float(devices.current(v, gap[0, 0])), rel=1e-6)


def test_one_row_with_wire_resistance_matches_closed_form():
    # V -> r -> v0 -> r -> v1 ... v_{C-1}, every node shunted by g to the (ideal) columns:
    # v_k = V cosh(theta (C - 1/2 - k)) / cosh(theta (C + 1/2)), with cosh(theta) = 1 + r g / 2.
    cols, r, g, v_in = 12, 5.0, 2e-3, 0.3
    res = spice.simulate(memsim.Crossbar.ohmic(np.full((1, cols), g), r_row=r, r_col=0.0), [v_in])
    theta = np.arccosh(1 + r * g / 2)
    k = np.arange(cols)
    expected = v_in * np.cosh(theta * (cols - 0.5 - k)) / np.cosh(theta * (cols + 0.5))
    np.testing.assert_allclose(res.v_row[0], expected, rtol=1e-9)
    np.testing.assert_allclose(res.i_col, g * expected, rtol=1e-9)


def _read_closed_form(scheme, rows, cols, g_s, g_u, v):
    # docs/design.md, ideal wires.
    if scheme == "floating":
        return v * (g_s + 1 / (1 / ((cols - 1) * g_u) + 1 / ((rows - 1) * (cols - 1) * g_u) + 1 / ((rows - 1) * g_u)))
    return v * g_s + {"v/2": (rows - 1) * g_u * v / 2, "v/3": (rows - 1) * g_u * v / 3, "grounded": 0.0}[scheme]


@pytest.mark.parametrize("scheme", memsim.SCHEMES)
@pytest.mark.parametrize("shape", [(2, 2), (4, 6)])
def test_single_cell_read_sneak_current_matches_closed_form(scheme, shape):
    rows, cols = shape
    g_s, g_u, v = 4e-6, 4e-5, 0.2
    g = np.full(shape, g_u)
    g[1, 0] = g_s
    res = spice.simulate_read(memsim.Crossbar.ohmic(g, 0.0, 0.0), 1, 0, v, scheme)
    assert res.i_col[0] == pytest.approx(_read_closed_form(scheme, rows, cols, g_s, g_u, v), rel=1e-9)


@pytest.mark.parametrize("size", [1, 5, 16, 32])
def test_ohmic_crossbar_matches_spsolve_reference_and_kirchhoff(size, rng):
    g = rng.uniform(1e-6, 1e-4, (size, size + 3))
    v = rng.uniform(0.0, 0.3, size)
    xb = memsim.Crossbar.ohmic(g, r_row=1.0, r_col=1.0)
    res = spice.simulate(xb, v, cells=True)
    ref = reference_solve_bias(xb, mvm_bias(v, xb.cols))
    np.testing.assert_allclose(res.i_col, ref.i_col, rtol=1e-6)
    np.testing.assert_allclose(res.v_row, ref.v_row, rtol=1e-6, atol=1e-12)
    i_in = (v - res.v_row[:, 0]) / xb.r_row
    assert i_in.sum() == pytest.approx(res.i_col.sum(), rel=1e-8)
    np.testing.assert_allclose(res.i_cell.sum(axis=0), res.i_col, rtol=1e-8)


def test_batch_inputs_and_pyspice_backend_agree(rng):
    xb = memsim.Crossbar.device(g_read=rng.uniform(5e-6, 40e-6, (6, 5)), r_row=2.0, r_col=2.0)
    v = rng.uniform(0, 0.2, (3, 6))
    batch = spice.simulate(xb, v)
    assert batch.i_col.shape == (3, 5) and batch.v_row.shape == (3, 6, 5)
    np.testing.assert_allclose(batch.i_col[2], spice.simulate(xb, v[2]).i_col, rtol=1e-12)
    shared = spice.simulate(xb, v[1], backend="pyspice")
    np.testing.assert_allclose(shared.i_col, batch.i_col[1], rtol=1e-9)
    # The shared library asks for KLU where it has it, as the subprocess runner does.
    assert shared.info["linear_solver"] == ("klu" if spice.engine("pyspice").klu else "sparse")
    assert batch.info["linear_solver"] == ("klu" if spice.engine().klu else "sparse")


def test_1t1r_cell_is_monotonic_and_gate_off_isolates():
    g = np.array([[30e-6]])
    currents_v = [spice.simulate(memsim.Crossbar.one_t_one_r(g_read=g, v_gate=1.8, r_row=0, r_col=0), [v]).i_col[0]
                  for v in np.linspace(0.05, 1.0, 8)]
    assert np.all(np.diff(currents_v) > 0)
    currents_g = [spice.simulate(memsim.Crossbar.one_t_one_r(g_read=g, v_gate=vg, r_row=0, r_col=0), [0.8]).i_col[0]
                  for vg in np.linspace(0.6, 1.8, 7)]
    assert np.all(np.diff(currents_g) > 0)
    # Saturation limits the current well below the RRAM alone at low gate drive.
    assert currents_g[0] < 0.1 * float(devices.current(0.8, devices.gap_for_conductance(g, 0.2)[0, 0]))
    off = spice.simulate(memsim.Crossbar.one_t_one_r(g_read=g, v_gate=0.0, r_row=0, r_col=0), [0.8]).i_col[0]
    assert abs(off) < 1e-11  # only the 1e-12 S junction leakage remains
    assert abs(off) < 1e-6 * currents_v[-1]


def test_programming_pulse_moves_selected_cell_and_barely_disturbs_half_selected():
    levels = devices.preset("rram8").levels
    xb = memsim.Crossbar.device(g_read=np.full((4, 4), levels[0]), r_row=1.0, r_col=1.0)
    run = spice.simulate_program(xb, 1, 2, 1.8, 50e-9)
    change = np.abs(run.gap_final - run.gap_initial)
    selected = change[1, 2]
    assert run.gap_final[1, 2] < run.gap_initial[1, 2]  # SET: the gap shrinks, towards higher levels
    assert devices.conductance(0.2, run.gap_final[1, 2]) > levels[1]
    half = np.concatenate([np.delete(change[1], 2), np.delete(change[:, 2], 1)])
    assert half.max() < 1e-3 * selected  # half-selected cells move at least 1000x less
    assert not np.any(np.isnan(run.gap))


def test_transient_subckt_integrates_the_same_rate_as_numpy():
    # One cell, ideal wires: ngspice's state node must follow d gap/dt = gap_rate(V, gap).
    xb = memsim.Crossbar.device(g_read=np.array([[5e-6]]), r_row=0.0, r_col=0.0)
    v_pulse, t_pulse, t_edge, t_settle = 1.6, 40e-9, 1e-9, 5e-9
    run = spice.simulate_program(xb, 0, 0, v_pulse, t_pulse, t_edge=t_edge, t_settle=t_settle)

    def v_of_t(t):
        ramp = np.interp(t, [0, t_settle, t_settle + t_edge, t_settle + t_edge + t_pulse,
                             t_settle + 2 * t_edge + t_pulse, 1.0], [0, 0, v_pulse, v_pulse, 0, 0])
        return ramp

    sol = solve_ivp(lambda t, y: [float(devices.gap_rate(v_of_t(t), y[0]))], (0, run.time[-1]),
                    [run.gap_initial[0, 0]], method="LSODA", rtol=1e-9, atol=1e-16, max_step=2e-10)
    assert run.gap_final[0, 0] == pytest.approx(sol.y[0, -1], rel=1e-3)
    assert run.gap_initial[0, 0] - run.gap_final[0, 0] > 1e-11  # it did switch


def test_missing_binary_timeout_and_bad_circuit_raise_spice_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # private: other processes share /tmp
    xb = memsim.Crossbar.ohmic(np.full((2, 2), 1e-5))
    with pytest.raises(memsim.SpiceError, match="timeout"):
        spice.run_netlist("* slow\nv1 1 0 sin(0 1 1e9)\nr1 1 0 1\n.tran 1e-15 1e-3\n.end\n", timeout=0.5)
    with pytest.raises(memsim.SpiceError, match="(?i)singular|converge|error"):
        spice.run_netlist("* singular\nv1 1 0 1\nr1 1 0 1\nr2 2 3 1\n.op\n.end\n")
    monkeypatch.setenv("MEMSIM_NGSPICE", "/nonexistent/ngspice")
    with pytest.raises(memsim.SpiceError, match="not found"):
        spice.simulate(xb, [0.1, 0.1])
    assert not list(tmp_path.iterdir())


def test_corrupt_rawfile_is_a_clear_error():
    with pytest.raises(memsim.SpiceError, match="truncated|Binary"):
        spice.parse_rawfile(b"Title: x\nNo. Variables: 2\n")
    head = b"Title: x\nFlags: real\nNo. Variables: 2\nNo. Points: 1\nVariables:\n\t0\tv(a)\tvoltage\n\t1\ti(b)\tcurrent\nBinary:\n"
    assert spice.parse_rawfile(head + np.array([1.0, 2.0]).tobytes())["i(b)"][0] == 2.0
    with pytest.raises(memsim.SpiceError, match="truncated"):
        spice.parse_rawfile(head + b"\x00" * 9)


# -- the engine: version, KLU, OSDI --------------------------------------------------------------
def test_engine_reports_what_ngspice_says_about_itself():
    eng = spice.engine()
    assert eng is spice.engine()  # probed once per process
    banner = subprocess.run([spice.ngspice_binary(), "-v"], capture_output=True, text=True).stdout
    assert f"ngspice-{eng.version}" in banner
    assert eng.klu == ("Compiled with KLU" in banner)
    assert eng.major >= 1 and eng.location == spice.ngspice_binary()
    if eng.osdi:  # a compiled model shipped with ngspice loads through pre_osdi
        shipped = sorted(Path("/usr/lib/x86_64-linux-gnu/ngspice").glob("*.osdi"))
        if shipped:
            text = f"* osdi\n.control\npre_osdi {shipped[0]}\n.endc\nv1 1 0 1\nr1 1 0 1\n.op\n.end\n"
            spice.run_netlist(text)
    assert eng.advice == "" if not eng.missing else "bookworm-backports" in eng.advice


def test_engine_without_klu_or_osdi_says_what_is_missing_in_one_line():
    # What Debian 12's own ngspice 39.3 answers to the probe: no solver line, no osdi command.
    output = ("******\n** ngspice-39.3\n** Creation Date: Sun Dec 18 2022\n******\n"
              "osdi: no such command available in ngspice\nv(1) = 1.000000e+00\n")
    eng = spice.parse_probe(output, "subprocess", "/usr/bin/ngspice")
    assert (eng.version, eng.major, eng.klu, eng.osdi) == ("39.3", 39, False, False)
    assert eng.missing == ("KLU", "OSDI")
    assert "\n" not in eng.advice
    assert re.search(r"ngspice 39\.3 .* lacks KLU .* and OSDI .*apt-get install -t bookworm-backports ngspice "
                     r"libngspice0.*Debian 13", eng.advice)
    modern = spice.parse_probe("** ngspice-46\nosdi: too few args.\nUsing KLU as Direct Linear Solver\n",
                               "subprocess", "x")
    assert (modern.klu, modern.osdi, modern.missing, modern.advice) == (True, True, (), "")


@pytest.mark.parametrize("kind", ["ohmic", "device", "1t1r"])
def test_klu_and_sparse_give_the_same_answer(kind, rng):
    if not spice.engine().klu:
        pytest.skip("this ngspice has no KLU")
    g = rng.uniform(6e-6, 1e-4, (12, 10))
    xb = memsim.Crossbar.of_kind(kind, g, r_row=2.0, r_col=1.2)
    v = rng.uniform(-0.3, 0.3, 12)
    klu = spice.simulate(xb, v)
    sparse = spice.simulate(xb, v, linear_solver="sparse")
    assert (klu.info["linear_solver"], sparse.info["linear_solver"]) == ("klu", "sparse")
    scale = np.max(np.abs(sparse.i_col))
    assert np.max(np.abs(klu.i_col - sparse.i_col)) < 1e-9 * scale
    assert np.max(np.abs(klu.v_row - sparse.v_row)) < 1e-9 * 0.3
    assert np.max(np.abs(memsim.solve(xb, v).i_col - klu.i_col)) < 1e-9 * scale


def test_transient_with_klu_matches_sparse():
    if not spice.engine().klu:
        pytest.skip("this ngspice has no KLU")
    xb = memsim.Crossbar.device(g_read=np.full((3, 3), 10e-6), r_row=1.0, r_col=1.0)
    klu = spice.simulate_program(xb, 1, 1, 1.6, 20e-9)
    sparse = spice.simulate_program(xb, 1, 1, 1.6, 20e-9, linear_solver="sparse")
    change = klu.gap_initial[1, 1] - klu.gap_final[1, 1]
    assert change > 1e-11
    assert abs(klu.gap_final[1, 1] - sparse.gap_final[1, 1]) < 1e-6 * change


def test_engine_without_klu_gets_no_klu_option(tmp_path, monkeypatch):
    # A stand-in for an ngspice built without KLU: it answers the probe as ngspice 39.3 does and
    # fails any netlist that names the solver; everything else is the real ngspice.
    fake = tmp_path / "ngspice"
    fake.write_text(f"""#!/bin/sh
for a in "$@"; do f="$a"; done
case "$f" in *probe.cir) echo "** ngspice-39.3"; echo "osdi: no such command available in ngspice"; exit 0;; esac
if grep -qi "options.*\\(klu\\|sparse\\)" "$f"; then echo "Error: unknown option klu" >&2; exit 5; fi
exec {shutil.which('ngspice')} "$@"
""")
    fake.chmod(0o755)
    xb = memsim.Crossbar.device(g_read=np.full((4, 5), 20e-6), r_row=2.0, r_col=2.0)
    v = np.linspace(0.05, 0.2, 4)
    expected = spice.simulate(xb, v, linear_solver="sparse").i_col
    monkeypatch.setenv("MEMSIM_NGSPICE", str(fake))
    monkeypatch.setattr(spice, "_WARNED_NO_KLU", False)
    with pytest.warns(RuntimeWarning, match="lacks KLU .* bookworm-backports"):
        res = spice.simulate(xb, v)
    assert res.info["linear_solver"] == "sparse"
    np.testing.assert_allclose(res.i_col, expected, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one line per process, not one per run
        spice.simulate(xb, v)
    with pytest.raises(memsim.SpiceError, match="linear_solver='klu' .* lacks KLU"):
        spice.simulate(xb, v, linear_solver="klu")
    with pytest.raises(ValueError, match="linear_solver must be one of"):
        spice.simulate(xb, v, linear_solver="umfpack")
