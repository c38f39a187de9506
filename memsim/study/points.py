"""A study's grid as points: expansion of a config, point keys, result columns, and the cost
model that weights progress bars and orders the work."""
from __future__ import annotations

import itertools
import math

from ..devices import preset
from . import metrics as metric_module  # looked up when called: metric_module.network_hook may be replaced
from .config import METRIC_AXES, METRICS, StudyConfig


#: Column name of each axis in the results file.
AXIS_COLUMNS = {"size": "size", "r_wire": "r_wire_ohm", "cell": "cell", "scheme": "scheme", "preset": "preset",
                "levels": "levels", "tile": "tile", "seed": "seed", "adc_bits": "adc_bits"}
INT_COLUMNS = {"size", "levels", "tile", "seed", "adc_bits", "tiles", "crossover_n", "searched_to_n"}
TEXT_COLUMNS = {"metric", "cell", "scheme", "preset", "error"}



# ---------------------------------------------------------------------------------------------
# points and rows
# ---------------------------------------------------------------------------------------------
def csv_cell(value) -> str:
    """One CSV cell: '' for None, shortest round-trip repr for floats, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return csv_cell(value.item())
    return str(value)


def point_key(point: dict) -> str:
    """The identity of a point: its metric and the values of that metric's axes."""
    metric = point["metric"]
    return metric + "|" + "|".join(f"{axis}={csv_cell(point[axis])}" for axis in METRIC_AXES[metric])


def columns(metrics) -> list[str]:
    """The results file's header for ``metrics`` (in the global metric order)."""
    chosen = [m for m in METRICS if m in set(metrics)]
    header = ["metric"]
    header += [AXIS_COLUMNS[a] for a in AXIS_COLUMNS if any(a in METRIC_AXES[m] for m in chosen)]
    for metric in chosen:
        header += [c for c in metric_module.METRIC_COLUMNS[metric] if c not in header]
    if any(m in metric_module.SPICE_CHECKED for m in chosen):
        header.append("spice_rel_diff")
    header.append("error")
    return header


def expand(config: StudyConfig) -> tuple[list[dict], list[str]]:
    """Every point of the study in grid order, and notes on points left out (and why)."""
    grid, options = config.grid, config.options
    points, notes, seen = [], [], set()
    _check_levels(config)
    for metric in config.metrics:
        if metric in ("network_accuracy", "network_cost"):
            hook, reason = metric_module.network_hook()
            if hook is None:
                notes.append(f"{metric} skipped: {reason}")
                continue
        if metric in ("tile", "network_accuracy", "network_cost"):
            odd = [t for t in grid["tile"] if t % 2]
            if odd:
                raise ValueError(f"grid.tile: {metric} needs even tile sizes (T inputs x T/2 differential pairs), "
                                 f"got {odd}")
        skipped = {"size": 0, "ohmic": 0}
        for combo in itertools.product(*(grid[axis] for axis in METRIC_AXES[metric])):
            point = {"metric": metric, **dict(zip(METRIC_AXES[metric], combo))}
            if "levels" in point and point["levels"] is None:
                point["levels"] = int(metric_module.level_conductances(point["preset"]).size)
            if metric == "write_disturb":
                if point["size"] > options["disturb_max_size"]:
                    skipped["size"] += 1
                    continue
                if point["cell"] == "ohmic":
                    skipped["ohmic"] += 1
                    continue
            key = point_key(point)
            if key not in seen:
                seen.add(key)
                points.append(point)
        if skipped["size"]:
            notes.append(f"write_disturb: {skipped['size']} points with N > options.disturb_max_size = "
                         f"{options['disturb_max_size']} left out (ngspice transients are for small arrays)")
        if skipped["ohmic"]:
            notes.append(f"write_disturb: {skipped['ohmic']} points with ohmic cells left out (linear cells do "
                         "not switch)")
    if not points:
        raise ValueError("the study has no points to compute" + (f" ({'; '.join(notes)})" if notes else ""))
    return points, notes


def _check_levels(config: StudyConfig) -> None:
    """The level range must be reachable by the RRAM model (device and 1T1R cells)."""
    if config.options["g_range"] is None or set(config.grid["cell"]) <= {"ohmic"}:
        return
    v_read = config.options["v_read"]
    for name in config.grid["preset"]:
        lo, hi = preset(name).params.g_range(v_read)
        g_min, g_max = config.options["g_range"]
        if g_min < lo or g_max > hi:
            raise ValueError(f"options.g_range [{g_min:g}, {g_max:g}] S is outside what the {name} RRAM model reaches "
                             f"at {v_read:g} V ([{lo:.3g}, {hi:.3g}] S); narrow it or use cell = 'ohmic'")


# ---------------------------------------------------------------------------------------------
# cost model (progress bar weights)
# ---------------------------------------------------------------------------------------------
def point_cost(point: dict, options: dict) -> float:
    """Rough relative cost of a point (seconds on one core), for the ETA and the scheduling order."""
    def solve(n, cell):
        return 1e-3 + 3e-6 * n * n * (5.0 if cell == "1t1r" else 1.0)

    def spice(n):
        return 0.2 * (n * n / 1024) ** 2.2

    metric = point["metric"]
    n = point.get("size", 0)
    spot = n <= options["spice_max_size"]
    if metric == "read_margin":
        return 2 * solve(n, point["cell"]) + (2 * spice(n) if spot else 0.0)
    if metric == "margin_crossover":
        return 12 * solve(options["crossover_max_size"] // 2, point["cell"]) + 4 * spice(32)
    if metric == "mvm":
        return options["inputs"] * solve(n, point["cell"]) + (spice(n) if spot else 0.0)
    if metric == "write_disturb":
        return 2.5 * (n / 16) ** 3 * options["disturb_steps"] / 200
    n_in, n_out = options["tile_matrix"]
    tiles = math.ceil(n_in / point["tile"]) * math.ceil(2 * n_out / point["tile"])
    if metric == "tile":
        return options["tile_inputs"] * tiles * solve(point["tile"], point["cell"])
    return 30.0 * tiles * solve(point["tile"], point["cell"])  # network_accuracy
