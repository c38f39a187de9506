"""Figures of study results, made from the results file alone (``memsim plot RESULTS``).

:func:`plot_results` reads a results CSV written by :func:`memsim.study.run` and writes, for
whatever metrics the file holds, each figure as PNG and SVG beside it (or into ``out``):

- ``<stem>_margin_vs_n``: sneak-path read margin against N, one panel per wire resistance, a
  line per bias scheme and cell kind, ngspice spot checks as open markers, the sensing limit
  as a dashed line and, from ``margin_crossover`` rows, the N where each curve falls below it;
- ``<stem>_mvm_error``: largest MVM error against N and wire resistance (a heat map per cell
  kind), plus the energy per MVM against N;
- ``<stem>_tile``: output error and argmax agreement (and network accuracy, when present)
  against tile size;
- ``<stem>_write_disturb``: half-select disturb of one SET pulse per bias scheme.

Figures are built on :class:`matplotlib.figure.Figure` (no pyplot state, no backend switch)
and saved atomically with :func:`memsim.io.save_figure`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .io import save_figure
from .study.results import read_results

SENSING_LIMIT = 0.1  # the usual read-margin limit of a sense amplifier: 10 %
FORMATS = ("png", "svg")
_SCHEME_COLOR = {"floating": "tab:red", "v/2": "tab:blue", "v/3": "tab:green", "grounded": "tab:gray"}
_CELL_STYLE = {"device": ("-", "o"), "1t1r": ("--", "s"), "ohmic": (":", "^")}
_CELL_LABEL = {"device": "selector-less", "1t1r": "1T1R", "ohmic": "linear cells"}


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    return [save_figure(fig, out_dir / f"{name}.{fmt}") for fmt in FORMATS]


def _ok(row, *keys):
    return not row.get("error") and all(isinstance(row.get(k), (int, float)) for k in keys)


def _panels(n, max_cols=4):
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _label_r(r):
    return "ideal wires" if r == 0 else f"{r:g} ohm/segment"


# ---------------------------------------------------------------------------------------------
def margin_figure(rows, threshold: float = SENSING_LIMIT):
    """Read margin against N; None when ``rows`` hold no read_margin or margin_crossover rows."""
    margins = [r for r in rows if r["metric"] == "read_margin" and _ok(r, "size", "margin")]
    crossings = {(r["r_wire_ohm"], r["cell"], r["scheme"], r["preset"]): r for r in rows
                 if r["metric"] == "margin_crossover" and not r.get("error")}
    if not margins and not crossings:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    wires = sorted({r["r_wire_ohm"] for r in margins} | {k[0] for k in crossings})
    presets = sorted({r["preset"] for r in margins} | {k[3] for k in crossings})
    sizes = sorted({r["size"] for r in margins}) or sorted({r["crossover_n"] for r in crossings.values()
                                                             if r.get("crossover_n") is not None})
    order = lambda k: (list(_CELL_STYLE).index(k[0]), list(_SCHEME_COLOR).index(k[1]), k[2])  # noqa: E731
    keys = sorted({(r["cell"], r["scheme"], r["preset"]) for r in margins} | {k[1:] for k in crossings}, key=order)
    n_rows, n_cols = _panels(len(wires), 3)
    fig = _figure(4.8 * n_cols, 3.6 * n_rows + 0.4 + 0.18 * len(keys))
    axes = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False).ravel()
    # margins below ~1e-7 are differences of nearly equal currents at the solver's tolerance
    floor = max(min([100 * r["margin"] for r in margins if r["margin"] > 0] + [100 * threshold / 2]), 1e-5)
    for ax, r_wire in zip(axes, wires):
        below = 0
        for cell, scheme, preset in keys:
            points = sorted((r for r in margins if (r["r_wire_ohm"], r["cell"], r["scheme"], r["preset"])
                             == (r_wire, cell, scheme, preset)), key=lambda r: r["size"])
            style, marker = _CELL_STYLE.get(cell, ("-", "o"))
            color = _SCHEME_COLOR.get(scheme, "k")
            if points:
                # floating and V/2 nearly coincide: floating is drawn as a wide halo under V/2
                wide = dict(lw=4, alpha=0.45, ms=7) if scheme == "floating" else dict(lw=1.5, ms=4)
                ax.plot([r["size"] for r in points], [100 * max(r["margin"], 1e-12) for r in points], style,
                        marker=marker, color=color, **wide)
                spice = [r for r in points if _ok(r, "margin_spice")]
                ax.plot([r["size"] for r in spice], [100 * r["margin_spice"] for r in spice], linestyle="none",
                        marker="o", ms=9, mfc="none", mec=color, alpha=0.8)
            cross = crossings.get((r_wire, cell, scheme, preset))
            if cross is not None and cross.get("crossover_n") is not None:
                n = cross["crossover_n"]
                ax.plot([n], [100 * threshold], marker="v", ms=8, color=color, mec="k", mew=0.5)
                below += 1
                ax.annotate(f"N={n}" + (f" ({_CELL_LABEL.get(cell, cell)})" if cell != "device" else ""),
                            (n, 100 * threshold), xytext=(4, -4 - 9 * below), textcoords="offset points",
                            fontsize=7, color=color, ha="left", va="top")
        ax.axhline(100 * threshold, color="k", ls="--", lw=1)
        ax.text(0.99, 100 * threshold, f"{100 * threshold:g}% sensing limit ", transform=ax.get_yaxis_transform(),
                ha="right", va="bottom", fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 100)
        ax.set_xticks(sizes, [str(s) for s in sizes], fontsize=7)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("array size N (N x N)")
        ax.set_title(_label_r(r_wire), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[::n_cols]:
        ax.set_ylabel("read margin (I_LRS - I_HRS) / I_LRS (%)")
    for ax in axes[len(wires):]:
        ax.set_visible(False)
    handles = []
    for cell, scheme, preset in keys:
        style, marker = _CELL_STYLE.get(cell, ("-", "o"))
        label = f"{_CELL_LABEL.get(cell, cell)}, {scheme}" + (f", {preset}" if len(presets) > 1 else "")
        found = {k[0]: r for k, r in crossings.items() if k[1:] == (cell, scheme, preset)}
        never = [r_wire for r_wire, r in found.items() if r.get("crossover_n") is None]
        if never:
            searched = max(found[r_wire]["searched_to_n"] for r_wire in never)
            where = "" if len(never) == len(found) else " with " + ", ".join(_label_r(w) for w in sorted(never))
            label += f" (never below {100 * threshold:g}% up to N={searched}{where})"
        handles.append(Line2D([], [], ls=style, marker=marker, ms=4, color=_SCHEME_COLOR.get(scheme, "k"),
                              label=label))
    handles.append(Line2D([], [], ls="none", marker="o", ms=9, mfc="none", mec="k", label="ngspice spot check"))
    if crossings:
        handles.append(Line2D([], [], ls="none", marker="v", ms=8, color="w", mec="k",
                              label=f"first N below {100 * threshold:g}% (bisection, fast solver)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    fig.suptitle("Sneak paths: read of the far-corner cell, every other cell at LRS", fontsize=10)
    return fig


def mvm_figure(rows):
    """Largest MVM error heat map (N x wire resistance) per cell kind, and energy per MVM."""
    data = [r for r in rows if r["metric"] == "mvm" and _ok(r, "size", "r_wire_ohm", "mvm_max_error")]
    if not data:
        return None
    groups = sorted({(r["cell"], r["preset"], r["levels"]) for r in data},
                    key=lambda g: (list(_CELL_STYLE).index(g[0]), g[1], g[2]))
    fig = _figure(4.4 * (len(groups) + 1), 3.9)
    axes = fig.subplots(1, len(groups) + 1, squeeze=False)[0]
    sizes = sorted({r["size"] for r in data})
    wires = sorted({r["r_wire_ohm"] for r in data})
    many = len({g[1:] for g in groups}) > 1
    from matplotlib.colors import LogNorm

    positive = [100 * r["mvm_max_error"] for r in data if r["mvm_max_error"] > 0]
    # one colour scale for every panel; errors below 1e-3 % are solver round-off
    norm = LogNorm(vmin=1e-3, vmax=max(max(positive, default=1.0), 1e-2))
    for ax, (cell, preset, levels) in zip(axes, groups):
        grid = np.full((len(wires), len(sizes)), np.nan)
        sums = defaultdict(list)
        for r in data:
            if (r["cell"], r["preset"], r["levels"]) == (cell, preset, levels):
                sums[wires.index(r["r_wire_ohm"]), sizes.index(r["size"])].append(r["mvm_max_error"])
        for (i, j), values in sums.items():
            grid[i, j] = 100 * np.mean(values)  # mean over seeds
        image = ax.imshow(np.clip(grid, norm.vmin, None), origin="lower", aspect="auto", cmap="viridis", norm=norm)
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=6,
                        color="w" if value < math.sqrt(norm.vmin * norm.vmax) else "k")
        ax.set_xticks(range(len(sizes)), [str(s) for s in sizes], fontsize=7)
        ax.set_yticks(range(len(wires)), [f"{w:g}" for w in wires], fontsize=7)
        ax.set_xlabel("array size N")
        ax.set_ylabel("wire resistance per segment (ohm)")
        ax.set_title(f"{_CELL_LABEL.get(cell, cell)}" + (f", {preset}, {levels} levels" if many else ""), fontsize=9)
        fig.colorbar(image, ax=ax, label="largest MVM error vs ideal (%)")
    ax = axes[-1]
    for cell, preset, levels in groups:
        for k, r_wire in enumerate(wires):
            pts = sorted((r for r in data if (r["cell"], r["preset"], r["levels"], r["r_wire_ohm"]) ==
                          (cell, preset, levels, r_wire) and _ok(r, "energy_J")), key=lambda r: r["size"])
            if pts:
                style, marker = _CELL_STYLE.get(cell, ("-", "o"))
                ax.plot([r["size"] for r in pts], [r["energy_J"] for r in pts], style, marker=marker, ms=3,
                        color=f"C{k}", label=f"{_CELL_LABEL.get(cell, cell)}, {r_wire:g} ohm")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("array size N")
    ax.set_ylabel("energy per MVM (J)")
    ax.set_title("drivers' energy per MVM (random inputs)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.suptitle("IR drop: largest MVM error against the ideal product (ideal wires and switch; random levels "
                 "and inputs)", fontsize=10)
    return fig


def tile_figure(rows):
    """Output error and agreement / accuracy against tile size; None without tile rows."""
    tiles = [r for r in rows if r["metric"] == "tile" and _ok(r, "tile", "tile_max_error")]
    nets = [r for r in rows if r["metric"] == "network_accuracy" and _ok(r, "tile", "accuracy")]
    if not tiles and not nets:
        return None
    fig = _figure(10, 3.9)
    ax_err, ax_acc = fig.subplots(1, 2)

    def series(data, value):
        groups = defaultdict(list)
        for r in data:
            groups[r["cell"], r["r_wire_ohm"], r["preset"], r["levels"]].append(r)
        for (cell, r_wire, preset, levels), pts in sorted(groups.items(),
                                                           key=lambda kv: (list(_CELL_STYLE).index(kv[0][0]),) + kv[0][1:]):
            by_tile = defaultdict(list)
            for r in pts:
                by_tile[r["tile"]].append(r[value])
            xs = sorted(by_tile)
            yield cell, r_wire, preset, levels, xs, [float(np.mean(by_tile[x])) for x in xs]

    wires = sorted({r["r_wire_ohm"] for r in tiles + nets})
    for cell, r_wire, _, _, xs, ys in series(tiles, "tile_max_error"):
        style, marker = _CELL_STYLE.get(cell, ("-", "o"))
        ax_err.plot(xs, [100 * max(y, 1e-8) for y in ys], style, marker=marker, ms=4, color=f"C{wires.index(r_wire)}",
                    label=f"{_CELL_LABEL.get(cell, cell)}, {_label_r(r_wire)}")
    ax_err.set_ylabel("largest output error (% of full scale; floor 1e-6 %)")
    for cell, r_wire, _, _, xs, ys in series(tiles, "argmax_agreement"):
        style, marker = _CELL_STYLE.get(cell, ("-", "o"))
        ax_acc.plot(xs, [100 * y for y in ys], style, marker=marker, ms=4, color=f"C{wires.index(r_wire)}",
                    label=f"argmax agreement, {_CELL_LABEL.get(cell, cell)}, {_label_r(r_wire)}")
    for cell, r_wire, _, _, xs, ys in series(nets, "accuracy"):
        ax_acc.plot(xs, [100 * y for y in ys], "-", marker="D", ms=5, color=f"C{wires.index(r_wire)}", lw=2,
                    label=f"network accuracy, {_CELL_LABEL.get(cell, cell)}, {_label_r(r_wire)}")
    floats = [r["accuracy_float"] for r in nets if _ok(r, "accuracy_float")]
    if floats:
        ax_acc.axhline(100 * float(np.mean(floats)), color="k", ls="--", lw=1, label="floating-point network")
    ax_acc.set_ylabel("accuracy / agreement with the ideal (%)")
    ticks = sorted({r["tile"] for r in tiles + nets})
    for ax in (ax_err, ax_acc):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("tile size T (T x T cells)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    ax_err.set_yscale("log")
    fig.suptitle("Accuracy against tile size" + ("" if nets else " (stand-in: random differential weights; "
                                                             "argmax agreement with the ideal product)"), fontsize=10)
    return fig


def disturb_figure(rows):
    """Largest half-select disturb per bias scheme and cell kind (ngspice transients)."""
    data = [r for r in rows if r["metric"] == "write_disturb" and _ok(r, "disturb_max")]
    if not data:
        return None
    groups = sorted({(r["cell"], r["size"], r["r_wire_ohm"]) for r in data},
                    key=lambda g: (list(_CELL_STYLE).index(g[0]), g[1], g[2]))
    schemes = [s for s in _SCHEME_COLOR if any(r["scheme"] == s for r in data)]
    fig = _figure(max(6, 1.2 * len(schemes) * max(1, len(groups)) / 2), 3.9)
    ax = fig.subplots()
    width = 0.8 / len(groups)
    for k, group in enumerate(groups):
        values = []
        for scheme in schemes:
            match = [r["disturb_max"] for r in data if (r["cell"], r["size"], r["r_wire_ohm"]) == group
                     and r["scheme"] == scheme]
            values.append(100 * max(match[0], 1e-12) if match else np.nan)
        cell, size, r_wire = group
        ax.bar(np.arange(len(schemes)) + (k - (len(groups) - 1) / 2) * width, values, width,
               label=f"{_CELL_LABEL.get(cell, cell)}, {size}x{size}, {r_wire:g} ohm")
    ax.set_xticks(range(len(schemes)), schemes)
    ax.set_yscale("log")
    ax.set_ylabel("largest |dG/G| of an unselected cell (%)")
    ax.set_title("Write disturb of one SET pulse (ngspice transient)", fontsize=10)
    ax.legend(fontsize=6)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return fig


#: The figures :func:`plot_results` makes, each as ``{results stem}_{name}.png`` and ``.svg``.
FIGURES = ("margin_vs_n", "mvm_error", "tile", "write_disturb")


def _out_dir(results: Path, out) -> Path:
    return Path(out) if out is not None else results.parent


def figure_paths(results: str | Path, out: str | Path | None = None) -> list[Path]:
    """Every path :func:`plot_results` may write for ``results`` (into ``out``, default the
    results file's folder), so a caller can tell which of them a run replaces."""
    results = Path(results)
    return [_out_dir(results, out) / f"{results.stem}_{name}.{fmt}" for name in FIGURES for fmt in FORMATS]


def plot_results(results: str | Path, out: str | Path | None = None, *,
                 threshold: float = SENSING_LIMIT) -> list[Path]:
    """Write every figure the results file supports (PNG and SVG); returns their paths."""
    results = Path(results)
    rows = read_results(results)
    makers = {"margin_vs_n": lambda: margin_figure(rows, threshold), "mvm_error": lambda: mvm_figure(rows),
              "tile": lambda: tile_figure(rows), "write_disturb": lambda: disturb_figure(rows)}
    paths = []
    for name in FIGURES:
        fig = makers[name]()
        if fig is not None:
            paths += _save(fig, _out_dir(results, out), f"{results.stem}_{name}")
    return paths
