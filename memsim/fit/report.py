"""The fit's card and report: parameter table, residual table and one figure (PNG)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..devices.presets import Variability
from ..io import save_figure, write_atomic
from . import model
from .card import DeviceCard
from .spread import read_states


def make_card(result, iv=None, pulses=None, spread=None, v_read: float = 0.2, state: str = "hrs") -> DeviceCard:
    """The device card of a fit: its parameters; variability from ``spread`` (a
    :class:`~memsim.fit.spread.Spread`, for ``state``) where given, read noise from the fit's
    residual; the LRS and HRS read conductances measured on the sweeps (median)."""
    variability = Variability()
    rms = [r["rms_rel"] for r in result.residuals.values()]
    sigma_read = float(min(rms)) if rms else None
    if spread is not None and all(math.isfinite(spread.states[state][k]) for k in ("sigma_c2c", "sigma_d2d")):
        variability = spread.variability(state, sigma_read=sigma_read)
    elif sigma_read is not None:
        variability = Variability(sigma_read=sigma_read)
    if iv is not None:
        states = [read_states(s, v_read) for s in iv.groups]
        g_lrs = float(np.median([s["lrs"] for s in states]))
        g_hrs = float(np.median([s["hrs"] for s in states]))
    else:
        g_all = np.concatenate([t.g_read for t in pulses.groups])
        g_lrs, g_hrs = float(g_all.max()), float(g_all.min())
    entries = [{"kind": kind, "file": Path(d.path).name, "sha256": d.sha256}
               for kind, d in (("iv", iv), ("pulses", pulses)) if d is not None]
    if spread is not None and getattr(spread, "source", None) is not None:
        entries.append({"kind": "spread", "file": Path(spread.source.path).name, "sha256": spread.source.sha256})
    fit = {"fitted": list(result.fitted), "held": dict(result.held), "rel_error": dict(result.rel_error),
           "residuals": result.residuals, "evaluations": result.evaluations,
           "start": {n: getattr(result.start, n) for n in result.fitted + tuple(result.held)}}
    return DeviceCard(result.params, variability, v_read, g_lrs, g_hrs, tuple(entries), fit)


def residual_table(result) -> str:
    """Per data set and per sweep / train: rms relative error of the fitted model."""
    lines = [f"{'data':<10}{'device':<10}{'cycle':>6}{'rms rel. error':>16}"]
    for (kind, device, cycle), rms in result.groups.items():
        lines.append(f"{kind:<10}{device:<10}{cycle:>6}{rms:>16.3%}")
    for kind, r in result.residuals.items():
        lines.append(f"{kind + ' (all)':<26}{r['rms_rel']:>16.3%}   max {r['max_rel']:.3%} over {r['points']} points")
    return "\n".join(lines)


def figure(result, iv=None, pulses=None, t_edge: float = model.T_EDGE, max_groups: int = 4):
    """Measured (dots) and fitted (lines) I-V sweeps (|I| on a log axis) and pulse responses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (iv is not None) + (pulses is not None)
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    axes = axes[0]
    k = 0
    if iv is not None:
        ax = axes[k]
        k += 1
        for n, sweep in enumerate(iv.groups[:max_groups]):
            fitted, _ = model.simulate_sweep(sweep, result.params)
            ax.semilogy(sweep.v, np.abs(sweep.i), ".", ms=3, color=f"C{n}", label=f"{sweep.device}/{sweep.cycle} measured")
            ax.semilogy(sweep.v, np.abs(fitted), "-", lw=1, color=f"C{n}", label=f"{sweep.device}/{sweep.cycle} fitted")
        peak = max(float(np.max(np.abs(s.i))) for s in iv.groups)
        ax.set_ylim(bottom=1e-4 * peak)  # samples at 0 V read 0 A
        ax.set_xlabel("programmed voltage (V)")
        ax.set_ylabel("|current| (A)")
        ax.set_title("I-V sweeps")
        ax.legend(fontsize=7)
    if pulses is not None:
        ax = axes[k]
        for n, train in enumerate(pulses.groups[:max_groups]):
            fitted, _ = model.simulate_train(train, result.params, t_edge)
            index = np.arange(train.g_read.size)
            ax.plot(index, train.g_read * 1e6, ".", ms=4, color=f"C{n}", label=f"{train.device}/{train.cycle} measured")
            ax.plot(index, fitted * 1e6, "-", lw=1, color=f"C{n}", label=f"{train.device}/{train.cycle} fitted")
        ax.set_xlabel("pulse number")
        ax.set_ylabel("read conductance (uS)")
        ax.set_title("pulse trains")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_report(result, card: DeviceCard, out: str | Path, iv=None, pulses=None, t_edge: float = model.T_EDGE,
                 truth=None) -> dict:
    """Write ``card.json``, ``report.txt`` (parameter and residual tables) and ``fit.png`` into
    ``out``; returns their paths."""
    import matplotlib.pyplot as plt

    out = Path(out)
    paths = {"card": card.save(out / "card.json")}
    text = [result.table(truth), "", residual_table(result), "",
            "variability: " + ", ".join(f"{k}={v:.4g}" for k, v in card.to_dict()["variability"].items())]
    paths["report"] = write_atomic(out / "report.txt", "\n".join(text) + "\n")
    fig = figure(result, iv, pulses, t_edge)
    try:
        paths["figure"] = save_figure(fig, out / "fit.png")
    finally:
        plt.close(fig)
    return paths


def relative_error(measured, fitted, floor: float = 0.0) -> float:
    """rms of fitted / measured - 1 over the samples with |measured| > floor."""
    keep = np.abs(measured) > floor
    return float(math.sqrt(np.mean((fitted[keep] / measured[keep] - 1) ** 2)))
