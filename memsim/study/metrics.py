"""The quantities a study computes, one function per metric, on the public memsim API.

Every function takes one grid point (a dict of axis values, see
:data:`memsim.study.config.METRIC_AXES`) and the validated options, and returns a dict of
result columns (SI units; None where a value does not apply).  Randomness comes only from
``numpy.random.default_rng`` seeded from the point's ``seed`` and the axes that shape the
random draw, never from the worker that runs it, so every executor gives the same numbers.

Conventions shared with :mod:`memsim.demo` and docs/design.md:

- read margin: (I_LRS - I_HRS) / I_LRS sensed on the selected column when reading cell
  (0, N-1) (the far end of its row from the driver, the top of its column: the longest wire
  path), every other cell at LRS (the highest level), LRS / HRS the highest / lowest level;
  1T1R arrays turn the gates of the unselected word lines off (0 V);
- 1T1R cells use the shipped BSIM4 card in ngspice and, in the fast solver, the reduced
  transistor of the committed calibration (``options.transistor = "level1"`` uses the level-1
  card in both);
- the MVM error is measured against the ideal product of the same cells (ideal wires, ideal
  switch): ``Crossbar.ideal_i_col``, so device nonlinearity is part of the target and only
  the circuit (IR drop, transistor) makes the error.
"""
from __future__ import annotations

import functools

import numpy as np

from ..circuit import spice
from ..circuit.array import Crossbar
from ..circuit.result import driver_power
from ..cost import CostConfig, network_cost
from ..devices import preset
from ..devices.calibration import Calibration
from ..devices.rram import conductance
from ..devices.transistor import MosfetParams
from ..solver import solve, solve_read
from .worker import compute

# Stream tags of the seeded generators, so two metrics never share a random stream.
_STREAM_MVM = 1
_STREAM_TILE = 2
#: Relative tolerance of "below the threshold" in the crossover search (solver round-off).
TIE = 1e-9


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
def level_conductances(preset_name: str, n_levels: int | None = None, g_range=None) -> np.ndarray:
    """Programmed conductances (S at the preset's read voltage): the preset's own levels, or
    ``n_levels`` evenly spaced over its range (or over ``g_range`` = [g_min, g_max])."""
    levels = np.asarray(preset(preset_name).levels, dtype=float)
    if g_range is None and (n_levels is None or n_levels == levels.size):
        return levels
    lo, hi = (levels[0], levels[-1]) if g_range is None else g_range
    return np.linspace(lo, hi, levels.size if n_levels is None else n_levels)


@functools.lru_cache(maxsize=None)
def _transistor(name: str):
    if name == "level1":
        return MosfetParams()
    return Calibration.load().mosfet()


def crossbar(cell: str, g_read, r_wire: float, *, v_read: float = 0.2, v_gate=1.8, transistor: str = "bsim4"):
    """A crossbar of ``cell`` kind with read conductances ``g_read`` (S at ``v_read``)."""
    return Crossbar.of_kind(cell, g_read, r_row=r_wire, r_col=r_wire, v_read=v_read, v_gate=v_gate,
                            transistor=_transistor(transistor) if cell == "1t1r" else None)


def _spice_kwargs(options):
    return {"timeout": options["spice_timeout"]}


def _gates(cell: str, size: int, row: int, v_gate: float):
    """1T1R: only the selected word line's transistors on; the other kinds have no gates."""
    if cell != "1t1r":
        return v_gate
    gates = np.zeros(size)
    gates[row] = v_gate
    return gates


# ---------------------------------------------------------------------------------------------
# sneak paths
# ---------------------------------------------------------------------------------------------
def closed_form_read_current(scheme: str, rows: int, cols: int, g_selected: float, g_unselected: float,
                             v_read: float = 0.2) -> float:
    """Sensed current (A) of a single-cell read with ideal wires and linear cells (docs/design.md).

    ``g_selected`` the selected cell, ``g_unselected`` every other cell (S).
    """
    if scheme == "floating":
        if rows == 1 or cols == 1:
            return v_read * g_selected
        sneak = 1.0 / (1.0 / ((cols - 1) * g_unselected) + 1.0 / ((rows - 1) * (cols - 1) * g_unselected)
                       + 1.0 / ((rows - 1) * g_unselected))
        return v_read * (g_selected + sneak)
    if scheme == "v/2":
        return v_read * g_selected + (rows - 1) * g_unselected * v_read / 2
    if scheme == "v/3":
        return v_read * g_selected + (rows - 1) * g_unselected * v_read / 3
    if scheme == "grounded":
        return v_read * g_selected
    raise ValueError(f"bias scheme must be one of floating, v/2, v/3, grounded, got {scheme!r}")


def closed_form_margin(scheme: str, size: int, g_lrs: float, g_hrs: float) -> float:
    """(I_LRS - I_HRS) / I_LRS of an N x N array with ideal wires and linear cells, others at LRS."""
    i_lrs = closed_form_read_current(scheme, size, size, g_lrs, g_lrs)
    i_hrs = closed_form_read_current(scheme, size, size, g_hrs, g_lrs)
    return (i_lrs - i_hrs) / i_lrs


def read_margin(cell: str, size: int, scheme: str, *, r_wire: float, g_lrs: float, g_hrs: float,
                v_read: float = 0.2, v_gate: float = 1.8, engine: str = "solver", transistor: str = "bsim4",
                timeout: float = 600.0) -> tuple[float, float, float]:
    """Worst-case sneak-path read margin of an N x N array: (margin, I_LRS, I_HRS), A.

    Reads cell (0, N-1) at ``v_read`` with ``scheme`` while every other cell is at ``g_lrs``
    (S at ``v_read``), once with the selected cell at ``g_lrs`` and once at ``g_hrs``;
    margin = (I_LRS - I_HRS) / I_LRS of the current sensed on the selected column.  1T1R
    arrays keep the unselected word lines' gates at 0 V.  ``engine``: "solver" (the fast
    solver) or "ngspice".
    """
    row, col = 0, size - 1
    gates = _gates(cell, size, row, v_gate)
    currents = []
    for g_selected in (g_lrs, g_hrs):
        g = np.full((size, size), g_lrs)
        g[row, col] = g_selected
        xb = crossbar(cell, g, r_wire, v_read=v_read, v_gate=gates, transistor=transistor)
        if engine == "ngspice":
            result = spice.simulate_read(xb, row, col, v_read, scheme, timeout=timeout)
        elif engine == "solver":
            result = solve_read(xb, row, col, v_read, scheme)
        else:
            raise ValueError(f"engine must be 'solver' or 'ngspice', got {engine!r}")
        currents.append(float(result.i_col[col]))
    i_lrs, i_hrs = currents
    return (i_lrs - i_hrs) / i_lrs, i_lrs, i_hrs


def _margin_args(point, options):
    levels = level_conductances(point["preset"], None, options["g_range"])
    return dict(r_wire=point["r_wire"], g_lrs=float(levels[-1]), g_hrs=float(levels[0]), v_read=options["v_read"],
                v_gate=options["v_gate"], transistor=options["transistor"])


def metric_read_margin(point, options) -> dict:
    args = _margin_args(point, options)
    size, cell, scheme = point["size"], point["cell"], point["scheme"]
    margin, i_lrs, i_hrs = read_margin(cell, size, scheme, **args)
    row = {"margin": margin, "i_lrs_A": i_lrs, "i_hrs_A": i_hrs}
    if size <= options["spice_max_size"]:
        margin_s, i_lrs_s, i_hrs_s = read_margin(cell, size, scheme, engine="ngspice",
                                                 timeout=options["spice_timeout"], **args)
        row["margin_spice"] = margin_s
        row["spice_rel_diff"] = max(abs(i_lrs - i_lrs_s) / abs(i_lrs_s), abs(i_hrs - i_hrs_s) / abs(i_hrs_s))
    return row


def margin_crossover(cell: str, scheme: str, *, threshold: float = 0.1, max_size: int = 1024,
                     **margin_args) -> tuple[int | None, dict]:
    """Smallest N (2..max_size) whose read margin is below ``threshold``, and the margins seen.

    Doubles N from 2 until the margin falls below the threshold, then bisects the last
    interval (the margin falls with N in every case studied; the margins at N-1 and N are
    both returned, so a reader can check the bracket).  Returns (None, margins) when the
    margin stays at or above the threshold up to ``max_size``.  "Below" means below by more
    than :data:`TIE` relative: linear cells with ideal wires hit the limit exactly (V/2 at
    N = 17, V/3 at N = 25 for an on/off ratio of 10), and rounding must not decide those ties.
    """
    seen: dict[int, float] = {}
    threshold = threshold * (1 - TIE)

    def margin(n):
        if n not in seen:
            seen[n] = read_margin(cell, n, scheme, **margin_args)[0]
        return seen[n]

    low, high = None, 2
    while margin(high) >= threshold:
        if high >= max_size:
            return None, seen
        low, high = high, min(2 * high, max_size)
    if low is None:
        return high, seen
    while high - low > 1:
        middle = (low + high) // 2
        if margin(middle) < threshold:
            high = middle
        else:
            low = middle
    return high, seen


def metric_margin_crossover(point, options) -> dict:
    args = _margin_args(point, options)
    cell, scheme = point["cell"], point["scheme"]
    n, seen = margin_crossover(cell, scheme, threshold=options["margin_threshold"],
                               max_size=options["crossover_max_size"], **args)
    row = {"searched_to_n": options["crossover_max_size"], "crossover_n": n}
    if n is None:
        return row
    row["margin_at_n"] = seen[n]
    row["margin_before_n"] = seen.get(n - 1) if n > 2 else None
    if n <= options["spice_max_size"]:
        row["margin_spice_at_n"] = read_margin(cell, n, scheme, engine="ngspice",
                                               timeout=options["spice_timeout"], **args)[0]
        if n > 2:
            row["margin_spice_before_n"] = read_margin(cell, n - 1, scheme, engine="ngspice",
                                                       timeout=options["spice_timeout"], **args)[0]
    return row


# ---------------------------------------------------------------------------------------------
# MVM: IR drop, power and energy
# ---------------------------------------------------------------------------------------------
def metric_mvm(point, options) -> dict:
    size, n_levels = point["size"], point["levels"]
    levels = level_conductances(point["preset"], n_levels, options["g_range"])
    # seeded by what shapes the draw only, so every r_wire and cell kind sees the same arrays
    rng = np.random.default_rng([point["seed"], _STREAM_MVM, size, levels.size])
    g = levels[rng.integers(0, levels.size, (size, size))]
    v_in = rng.uniform(0.0, options["v_read"], (options["inputs"], size))
    xb = crossbar(point["cell"], g, point["r_wire"], v_read=options["v_read"], v_gate=options["v_gate"],
                  transistor=options["transistor"])
    result = solve(xb, v_in, cells=xb.r_row == 0)
    ideal = xb.ideal_i_col(v_in)
    error = np.abs(result.i_col - ideal) / np.abs(ideal)
    power = driver_power(xb, v_in, result)
    row = {"mvm_max_error": float(error.max()), "mvm_mean_error": float(error.mean()),
           "power_W": float(power.mean()), "energy_J": float(power.mean() * options["read_time"])}
    if size <= options["spice_max_size"]:
        ref = spice.simulate(xb, v_in[0], timeout=options["spice_timeout"]).i_col
        row["mvm_spice_max_error"] = float(np.max(np.abs(ref - ideal[0]) / np.abs(ideal[0])))
        row["spice_rel_diff"] = float(np.max(np.abs(result.i_col[0] - ref) / np.abs(ref)))
    return row


# ---------------------------------------------------------------------------------------------
# write disturb (ngspice transients)
# ---------------------------------------------------------------------------------------------
def write_disturb(cell: str, size: int, scheme: str, *, r_wire: float, g_initial: float, v_write: float,
                  t_write: float, v_read: float = 0.2, v_gate: float = 1.8, steps: int = 200,
                  transistor: str = "bsim4", timeout: float = 600.0) -> dict:
    """One SET pulse on cell (0, N-1) of an array with every cell at ``g_initial`` (ngspice).

    Returns the relative change of the read conductance (at ``v_read``) of the selected
    cell, the largest over the unselected cells and the mean over the half-selected ones
    (the selected row and column).
    """
    row, col = 0, size - 1
    xb = crossbar(cell, np.full((size, size), g_initial), r_wire, v_read=v_read,
                  v_gate=_gates(cell, size, row, v_gate), transistor=transistor)
    t_stop = 2 * 1e-9 + t_write + 2 * 5e-9  # netlist.program's defaults: 1 ns edges, 5 ns settling
    result = spice.simulate_program(xb, row, col, v_write, t_write, scheme=scheme, timeout=timeout,
                                    max_step=t_stop / steps)
    g0 = conductance(v_read, result.gap_initial, xb.device_params)
    g1 = conductance(v_read, result.gap_final, xb.device_params)
    change = g1 / g0 - 1.0
    half = np.zeros((size, size), dtype=bool)
    half[row, :] = True
    half[:, col] = True
    half[row, col] = False
    others = np.ones((size, size), dtype=bool)
    others[row, col] = False
    return {"disturb_selected": float(change[row, col]), "disturb_max": float(np.abs(change[others]).max()),
            "disturb_mean_half": float(np.abs(change[half]).mean())}


def metric_write_disturb(point, options) -> dict:
    levels = level_conductances(point["preset"], None, options["g_range"])
    return write_disturb(point["cell"], point["size"], point["scheme"], r_wire=point["r_wire"],
                         g_initial=float(levels[0]), v_write=options["v_write"], t_write=options["t_write"],
                         v_read=options["v_read"], v_gate=options["v_gate"], steps=options["disturb_steps"],
                         transistor=options["transistor"], timeout=options["spice_timeout"])


# ---------------------------------------------------------------------------------------------
# tile size
# ---------------------------------------------------------------------------------------------
def differential_conductances(w, levels) -> np.ndarray:
    """Signed weights in [-1, 1] (R, K) -> conductances (R, 2K): columns (2k, 2k+1) hold the
    positive and negative part of output k on the nearest of ``levels`` (lowest level = 0)."""
    n = levels.size - 1
    pos = np.rint(np.clip(w, 0, 1) * n).astype(int)
    neg = np.rint(np.clip(-w, 0, 1) * n).astype(int)
    g = np.empty((w.shape[0], 2 * w.shape[1]))
    g[:, 0::2] = levels[pos]
    g[:, 1::2] = levels[neg]
    return g


def tiled_mvm(cell: str, g, v_in, tile: int, r_wire: float, *, v_read: float = 0.2, v_gate: float = 1.8,
              transistor: str = "bsim4"):
    """Column currents of ``g`` (R, C) split into ``tile`` x ``tile`` crossbars, partial sums added.

    Returns (i_col, ideal, first_tile): (B, C) A from the fast solver, the ideal product, and
    (crossbar, inputs) of the first tile for a SPICE spot check.
    """
    rows, cols = g.shape
    out = np.zeros((len(v_in), cols))
    ideal = np.zeros((len(v_in), cols))
    first = None
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            xb = crossbar(cell, g[r0:r0 + tile, c0:c0 + tile], r_wire, v_read=v_read, v_gate=v_gate,
                          transistor=transistor)
            v_tile = v_in[:, r0:r0 + tile]
            out[:, c0:c0 + tile] += solve(xb, v_tile, voltages=False).i_col
            ideal[:, c0:c0 + tile] += xb.ideal_i_col(v_tile)
            if first is None:
                first = (xb, v_tile[0])
    return out, ideal, first


def metric_tile(point, options) -> dict:
    tile = point["tile"]
    n_in, n_out = options["tile_matrix"]
    levels = level_conductances(point["preset"], point["levels"], options["g_range"])
    # the same weights and inputs for every tile size, wire resistance and cell kind
    rng = np.random.default_rng([point["seed"], _STREAM_TILE, n_in, n_out, levels.size])
    g = differential_conductances(rng.uniform(-1.0, 1.0, (n_in, n_out)), levels)
    v_in = rng.uniform(0.0, options["v_read"], (options["tile_inputs"], n_in))
    i_col, ideal, (xb0, v0) = tiled_mvm(point["cell"], g, v_in, tile, point["r_wire"], v_read=options["v_read"],
                                        v_gate=options["v_gate"], transistor=options["transistor"])
    y = i_col[:, 0::2] - i_col[:, 1::2]
    y_ideal = ideal[:, 0::2] - ideal[:, 1::2]
    error = np.abs(y - y_ideal) / np.abs(y_ideal).max(axis=1, keepdims=True)
    row = {"tile_max_error": float(error.max()), "tile_mean_error": float(error.mean()),
           "argmax_agreement": float(np.mean(y.argmax(axis=1) == y_ideal.argmax(axis=1)))}
    if tile <= options["spice_max_size"]:
        ref = spice.simulate(xb0, v0, timeout=options["spice_timeout"]).i_col
        row["spice_rel_diff"] = float(np.max(np.abs(solve(xb0, v0).i_col - ref) / np.abs(ref)))
    return row


# ---------------------------------------------------------------------------------------------
# network accuracy (memsim.nn, optional)
# ---------------------------------------------------------------------------------------------
def network_hook():
    """(callable, None) computing network accuracy through memsim.nn, or (None, reason).

    The hook is ``memsim.experiments.study_accuracy(*, network, tile, r_wire, cell, preset,
    levels, seed, v_read, v_gate, samples) -> {"accuracy": float, "accuracy_float": float}``.
    """
    try:
        from .. import experiments

        return experiments.study_accuracy, None
    except Exception as err:  # noqa: BLE001 - any failure (torch absent, say) means "not available"
        return None, f"memsim.nn cannot be used ({type(err).__name__}: {err})"


def metric_network_accuracy(point, options) -> dict:
    hook, reason = network_hook()
    if hook is None:
        raise RuntimeError(f"network accuracy is not available: {reason}")
    out = hook(network=options["network"], tile=point["tile"], r_wire=point["r_wire"], cell=point["cell"],
               preset=point["preset"], levels=point["levels"], seed=point["seed"], v_read=options["v_read"],
               v_gate=options["v_gate"], samples=options["network_samples"])
    return {"accuracy": out.get("accuracy"), "accuracy_float": out.get("accuracy_float")}


# ---------------------------------------------------------------------------------------------
# network cost: accuracy beside energy, latency and area (memsim.nn, memsim.cost)
# ---------------------------------------------------------------------------------------------
#: Result columns of network_cost that come from :func:`memsim.cost.network_cost`'s total row:
#: (column, key of the total row).  Energies per inference (J), latency (s), area (m^2).
COST_COLUMNS = (("energy_J", "energy_j"), ("array_energy_J", "array_j"), ("dac_energy_J", "dac_j"),
                ("adc_energy_J", "adc_j"), ("digital_energy_J", "digital_j"), ("latency_s", "latency_s"),
                ("area_m2", "area_m2"), ("ops", "ops"), ("tops_per_w", "tops_per_w"),
                ("tops_per_mm2", "tops_per_mm2"), ("tiles", "tiles"))


@functools.lru_cache(maxsize=1)
def _trained(network: str, seed: int):
    """The float ``network`` trained with ``seed`` (shipped for seed 0), kept for the next point."""
    from ..experiments import trained

    return trained(network, seed)


def network_cost_point(*, network: str, tile: int, r_wire: float, adc_bits: int, cell: str, preset: str,
                       seed: int, v_read: float = 0.2, v_gate: float = 1.8, samples: int = 360,
                       cost_samples: int = 16, cost_config=None) -> dict:
    """Accuracy and cost per inference of the built-in ``network`` (trained with ``seed``) on
    ``tile`` x ``tile`` tiles of ``cell`` cells with ``preset``'s levels, ``r_wire`` ohm per
    wire segment and ``adc_bits``-bit ADCs (full scale calibrated on 256 training inputs).

    Accuracy on the first ``samples`` test inputs; energy, latency and area from
    :func:`memsim.cost.network_cost` on the first ``cost_samples`` test inputs with
    ``cost_config`` (a :class:`memsim.cost.CostConfig`; its ``adc_bits`` is set to
    ``adc_bits``).  Returns ``accuracy``, ``accuracy_float`` and :data:`COST_COLUMNS`.
    """
    from ..nn import HardwareConfig, convert
    from ..experiments import calibration_inputs

    model, data = _trained(network, seed)
    hw = HardwareConfig(tile=tile, conductances=preset, cells=cell, r_wire=r_wire, v_read=v_read, v_gate=v_gate,
                        adc_bits=adc_bits, dtype="float64")
    analog = convert(model, hw, seed=seed, calibration_x=calibration_inputs(hw, data))
    x, y = data.x_test[:samples], data.y_test[:samples]
    cfg = (CostConfig() if cost_config is None else cost_config).replace(adc_bits=adc_bits, v_read=v_read)
    total = network_cost(analog, data.x_test[:cost_samples], cfg).total
    row = {"accuracy": analog.accuracy(x, y), "accuracy_float": analog.float_accuracy(x, y)}
    row.update({column: total[key] for column, key in COST_COLUMNS})
    return row


def metric_network_cost(point, options) -> dict:
    hook, reason = network_hook()
    if hook is None:
        raise RuntimeError(f"network cost is not available: {reason}")
    cfg = CostConfig(adc_kind=options["adc_kind"], read_time_s=options["read_time"])
    return network_cost_point(network=options["network"], tile=point["tile"], r_wire=point["r_wire"],
                              adc_bits=point["adc_bits"], cell=point["cell"], preset=point["preset"],
                              seed=point["seed"], v_read=options["v_read"], v_gate=options["v_gate"],
                              samples=options["network_samples"], cost_samples=options["cost_samples"],
                              cost_config=cfg)


METRIC_FUNCTIONS = {
    "read_margin": metric_read_margin,
    "margin_crossover": metric_margin_crossover,
    "mvm": metric_mvm,
    "write_disturb": metric_write_disturb,
    "tile": metric_tile,
    "network_accuracy": metric_network_accuracy,
    "network_cost": metric_network_cost,
}
#: Result columns of each metric, in file order (after the axis columns).
METRIC_COLUMNS = {
    "read_margin": ("margin", "i_lrs_A", "i_hrs_A", "margin_spice"),
    "margin_crossover": ("crossover_n", "searched_to_n", "margin_at_n", "margin_before_n", "margin_spice_at_n",
                         "margin_spice_before_n"),
    "mvm": ("mvm_max_error", "mvm_mean_error", "power_W", "energy_J", "mvm_spice_max_error"),
    "write_disturb": ("disturb_selected", "disturb_max", "disturb_mean_half"),
    "tile": ("tile_max_error", "tile_mean_error", "argmax_agreement"),
    "network_accuracy": ("accuracy", "accuracy_float"),
    "network_cost": ("accuracy", "accuracy_float", *(column for column, _ in COST_COLUMNS)),
}
#: Metrics with a fast-solver result that ngspice checks (the spice_rel_diff column).
SPICE_CHECKED = ("read_margin", "mvm", "tile")


def compute_row(point: dict, options: dict) -> dict:
    """Compute one point of a config study in a worker: the function of ``point["metric"]``;
    returns its result columns, or {"error": message} if it failed."""
    return compute(METRIC_FUNCTIONS[point["metric"]], point, options)
