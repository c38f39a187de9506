"""Pulse response of the compact model: integrated over the pulse, checked against ngspice.

A programming pulse of amplitude ``V`` and width ``t`` moves a cell's gap by an amount that
depends on the gap itself (the Stanford-PKU model's field enhancement gamma(g) and its Joule
heating, see :mod:`memsim.devices.rram`) and, in a 1T1R cell, on the access transistor,
whose gate voltage limits the current (compliance).

:class:`PulseModel` gives the gap change and the driver's energy of any pulse by integrating
the model's own gap rate over the pulse that :func:`pulse_transient` simulates (the same
trapezoid and series segments; in a 1T1R cell the RRAM voltage solves RRAM current =
transistor current at every instant), with the Numba kernels of :mod:`memsim.learn._pulse`.

:func:`measure` runs one ngspice transient (:func:`memsim.circuit.netlist.program`, the
``rram_tran`` subcircuit) per grid point (gap x amplitude x width, SET and RESET) on a single
cell and records

- the mean gap change per pulse (nm), from the gap node at the end of the transient, and
- the energy of the pulse, the integral of V(t) I(t) dt at the row driver (J).

:class:`ResponseTable` holds those grids, is written as a versioned JSON file tied to the
RRAM model text and the transistor card by SHA-256 (default:
``netlists/models/rram_pulse_response.json``, made by ``scripts/pulse_response.py``).  It is
the ngspice check of the integration (tests/test_learn.py compares every grid point, and
fresh transients off the grid), it sets the amplitudes and widths the model is used within,
and ``PulseModel(..., method="interpolate")`` still evaluates it directly: cubic
interpolation of log10|change| and log10 energy over (gap, amplitude, log10 width), exact at
the grid points but several per cent off between them where switching runs away.

Cycle-to-cycle noise: every pulse is a programming event, and the variability model
(:class:`memsim.devices.presets.Variability`) gives the spread of one event as a log-normal
factor sigma_c2c on the conductance, i.e. sigma_c2c * g0 in gap (G ~ exp(-gap/g0)).  The
trainer (:mod:`memsim.learn.insitu`) makes that the spread of the nominal pulse (the pulse it
uses, at the middle of its conductance window) and keeps it proportional to the mean change
elsewhere, so a half-select pulse that barely moves the gap adds no noise of its own.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import units
from ..circuit import netlist, spice
from ..circuit.array import Crossbar, as_real_array
from ..devices.rram import DEFAULT_PARAMS, RRAMParams, conductance, gap_for_conductance, spice_subckt
from ..devices.transistor import MODELS_DIR, MosfetParams
from ..errors import FileError
from ..io import LIMITS, check_format, read_json, write_atomic

FORMAT = "memsim-pulse-response"
VERSION = 1
DEFAULT_TABLE = MODELS_DIR / "rram_pulse_response.json"
POLARITIES = ("set", "reset")
KINDS = ("device", "1t1r")
#: Smallest |gap change| (nm) kept apart from zero: log10 of the change is interpolated.
FLOOR_NM = 1e-12
#: Smallest energy (J) kept apart from zero.
FLOOR_J = 1e-24
#: The single cell's row and column segments (ohm): the cell's whole circuit is the driver,
#: these two and the cell (a 0-ohm segment would be a 0 V source; 1 milliohm is negligible).
R_LINE = 1e-3


def model_hash(params: RRAMParams = DEFAULT_PARAMS) -> str:
    """SHA-256 of the RRAM subcircuit text (the model a table was measured on)."""
    return hashlib.sha256(spice_subckt(params).encode()).hexdigest()


@dataclass(frozen=True)
class Grid:
    """Where a cell's response is measured: gaps (m), amplitudes (V, magnitude; SET is +, RESET
    -), widths (s); ``v_gate`` (V) for a 1T1R cell.  Each axis strictly increasing, >= 4 points
    (cubic interpolation)."""
    kind: str = "device"
    # Not on the gap bounds themselves: there the change is exactly 0, whose log would make the
    # spline ring along the whole axis; PulseModel keeps a result within the bounds instead.
    gaps: tuple = tuple(np.round(np.r_[np.arange(0.2, 1.6001, 0.1), 1.65, 1.69], 3) * 1e-9)
    amplitudes: tuple = tuple(np.round(np.arange(0.3, 1.4001, 0.1), 3))
    widths: tuple = (10e-9, 20e-9, 50e-9, 100e-9)
    v_gate: float | None = None
    t_edge: float = 1e-9

    def __post_init__(self):
        units.choice(self.kind, KINDS, "cell kind")
        for name in ("gaps", "amplitudes", "widths"):
            axis = check_axis(getattr(self, name), f"Grid.{name}")
            object.__setattr__(self, name, tuple(float(a) for a in axis))
        if min(self.amplitudes) <= 0 or min(self.widths) <= 0:
            raise ValueError("Grid amplitudes (V) and widths (s) must be > 0 (RESET is the same magnitude, negative)")
        if (self.kind == "1t1r") != (self.v_gate is not None):
            raise ValueError("a 1t1r grid needs v_gate (V, the compliance); a device grid takes none")


def check_axis(values, what: str, error: type[Exception] = ValueError) -> np.ndarray:
    """A grid axis: at least 4 strictly increasing finite numbers (cubic interpolation needs
    them); ``error`` naming ``what`` otherwise."""
    try:
        axis = as_real_array(values, what, 1)
    except ValueError as err:
        raise error(f"{what} must be >= 4 strictly increasing finite numbers ({err})") from None
    if axis.size < 4 or np.any(np.diff(axis) <= 0):
        raise error(f"{what} must be >= 4 strictly increasing finite numbers, got {axis.size} "
                    f"{'not increasing' if axis.size >= 4 else 'points'}")
    return axis


def check_cells(cells, source) -> list:
    """The ``cells`` of a stored table, checked before use: a list of objects, each with a known
    ``kind``, increasing gap, amplitude and width axes, and for each polarity finite
    ``dgap_nm`` and ``energy_j`` grids of the axes' shape; FileError naming ``source`` otherwise."""
    if not isinstance(cells, list) or not cells or not all(isinstance(cell, dict) for cell in cells):
        raise FileError(f"{source}: pulse response table 'cells' must be a non-empty list of objects, "
                        f"got {units.shown(cells)}")
    for cell in cells:
        kind = cell.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise FileError(f"{source}: a pulse response cell has kind {units.shown(kind)}; known: {', '.join(KINDS)}")
        shape = tuple(check_axis(cell.get(key), f"{source}: {kind} cell {key}", FileError).size
                      for key in ("gap_nm", "amplitude_v", "width_s"))
        # The pulse model integrates with these two, so they are checked like the grids.
        for key, low, high in (("t_edge_s", 1e-12, 1.0), ("v_gate", 0.0, 10.0))[:2 if kind == "1t1r" else 1]:
            try:
                units.real(cell.get(key), key, low, high)
            except ValueError as err:
                raise FileError(f"{source}: the {kind} cell's {err}") from None
        for polarity in POLARITIES:
            entry = cell.get(polarity)
            if not isinstance(entry, dict):
                raise FileError(f"{source}: the {kind} cell lacks its {polarity!r} response (an object with "
                                "dgap_nm and energy_j)")
            for key in ("dgap_nm", "energy_j"):
                try:
                    as_real_array(entry.get(key), key, 3, shape=shape)
                except ValueError as err:
                    raise FileError(f"{source}: the {kind} cell's {polarity} {err}") from None
    return cells


#: The default grids: a selector-less cell, and a 1T1R cell with a 1.5 V gate as compliance.
DEFAULT_GRIDS = (Grid("device"),
                 Grid("1t1r", amplitudes=tuple(np.round(np.arange(0.6, 2.8001, 0.2), 3)), v_gate=1.5))


def pulse_transient(kind: str, gap: float, v_pulse: float, width: float, *, v_gate: float | None = None,
                    t_edge: float = 1e-9, params: RRAMParams = DEFAULT_PARAMS) -> tuple[float, float]:
    """One ngspice transient of one pulse on one cell: (gap change in nm, energy in J).

    The energy is the integral of V(t) I(t) at the row driver over the whole transient (the
    cell, and in a 1T1R cell its transistor, take all of it: the single cell has no wires).
    """
    gap_array = np.full((1, 1), gap)
    if kind == "device":
        xb = Crossbar.device(gap_array, r_row=R_LINE, r_col=R_LINE, params=params)
    else:
        xb = Crossbar.one_t_one_r(gap_array, v_gate=v_gate, r_row=R_LINE, r_col=R_LINE, params=params)
    vectors = spice.run_netlist(netlist.program(xb, 0, 0, v_pulse, width, t_edge=t_edge), timeout=60.0)
    energy = float(np.trapezoid(vectors["v(in0)"] * -vectors["i(vin0)"], vectors["time"]))
    return float(vectors["v(x0_0)"][-1] - gap * 1e9), energy


def measure(grid: Grid, params: RRAMParams = DEFAULT_PARAMS, progress: bool = False) -> dict:
    """Run the transients of ``grid`` (both polarities): the cell entry of a table."""
    from tqdm import tqdm

    shape = (len(grid.gaps), len(grid.amplitudes), len(grid.widths))
    entry = {"kind": grid.kind, "v_gate": grid.v_gate, "t_edge_s": grid.t_edge,
             "gap_nm": [g * 1e9 for g in grid.gaps], "amplitude_v": list(grid.amplitudes),
             "width_s": list(grid.widths)}
    with tqdm(total=2 * int(np.prod(shape)), desc=f"{grid.kind} pulses", disable=not progress, leave=False) as bar:
        for polarity in POLARITIES:
            sign = 1.0 if polarity == "set" else -1.0
            dgap, energy = np.zeros(shape), np.zeros(shape)
            for index in np.ndindex(shape):
                a, b, c = index
                dgap[index], energy[index] = pulse_transient(
                    grid.kind, grid.gaps[a], sign * grid.amplitudes[b], grid.widths[c],
                    v_gate=grid.v_gate, t_edge=grid.t_edge, params=params)
                bar.update(1)
            entry[polarity] = {"dgap_nm": dgap.tolist(), "energy_j": energy.tolist()}
    return entry


def _card_info(kind: str):
    if kind != "1t1r":
        return None, None

    mosfet = MosfetParams()
    return mosfet.card.name, mosfet.card_hash


@dataclass
class ResponseTable:
    """Measured pulse responses, one entry per cell (``"device"``, ``"1t1r"``)."""
    cells: list
    params: RRAMParams = DEFAULT_PARAMS
    created: str = ""
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    @classmethod
    def generate(cls, grids=DEFAULT_GRIDS, params: RRAMParams = DEFAULT_PARAMS, progress: bool = False) -> "ResponseTable":
        start = time.perf_counter()
        cells = [measure(grid, params, progress) for grid in grids]
        for cell in cells:
            cell["card"], cell["card_sha256"] = _card_info(cell["kind"])
        return cls(cells, params, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter() - start)

    def cell(self, kind: str = "device") -> dict:
        for cell in self.cells:
            if cell["kind"] == kind:
                return cell
        raise ValueError(f"the response table has no {kind!r} cell; it has {[c['kind'] for c in self.cells]}")

    def to_dict(self) -> dict:
        import dataclasses

        return {"format": FORMAT, "version": VERSION, "rram_model_sha256": model_hash(self.params),
                "rram_params": dataclasses.asdict(self.params), "created": self.created,
                "ngspice_seconds": self.seconds, "notes": self.notes, "cells": self.cells}

    def save(self, path=DEFAULT_TABLE) -> Path:
        import json


        return write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path=DEFAULT_TABLE) -> "ResponseTable":
        """Read a table; refuses another format or version, and a table whose RRAM model or
        transistor card no longer matches the one it was measured on (regenerate it with
        ``scripts/pulse_response.py``)."""
        data = read_json(path, "pulse response table", limit=LIMITS["results"])
        check_format(data, path, "pulse response table", FORMAT, VERSION, FileError,
                     advice="regenerate it with scripts/pulse_response.py")
        try:
            params = RRAMParams(**data["rram_params"])
            cells = data["cells"]
        except (KeyError, TypeError, ValueError) as err:
            raise FileError(f"{path}: pulse response table lacks or garbles {err}") from None
        cells = check_cells(cells, path)
        if data.get("rram_model_sha256") != model_hash(params):
            raise FileError(f"{path} was measured on another RRAM model text (SHA-256 differs); "
                            "regenerate it with scripts/pulse_response.py")
        for cell in cells:
            if cell.get("kind") == "1t1r" and _card_info("1t1r")[1] != cell.get("card_sha256"):
                raise FileError(f"{path}: the 1T1R response was measured with another transistor card "
                                f"({cell.get('card')}, SHA-256 differs); regenerate it with scripts/pulse_response.py")
        return cls(cells, params, data.get("created", ""), data.get("ngspice_seconds", 0.0), data.get("notes", {}))


#: Methods of :class:`PulseModel`.
METHODS = ("integrate", "interpolate")
#: Relative tolerance of the integrator's step control; against scipy's LSODA at 1e-10 the
#: integrated change and energy agree to better than 1e-5 (tests/test_learn.py).
RTOL = 1e-6
#: Calls of at most this many pulses are remembered (the last 8 of them).
MEMO_SIZE = 1 << 16


class PulseModel:
    """A cell's pulse response: gap change and driver energy of one programming pulse.

    ``dgap(gap, v, width)``: mean gap change (m) of one pulse of ``v`` volts (> 0 SET, < 0
    RESET) and flat top ``width`` s from gap ``gap`` (m); ``energy(gap, v, width)`` J; both
    broadcast.  ``method``:

    - ``"integrate"`` (default): the compact model's own gap rate integrated over the pulse
      that :func:`pulse_transient` simulates (the same trapezoid, edges ``t_edge`` of the
      table's cell, the same row and column segments of :data:`R_LINE` ohm; in a 1T1R cell
      the RRAM voltage solves the RRAM current = the level-1 transistor's current at every
      instant), by the Numba kernels of :mod:`memsim.learn._pulse`.  The energy is the
      integral of V(t) I(t) at the driver, as the table's.  The table is its ngspice check:
      on ngspice 46 the gap change agrees within 8e-4 at every grid point and within 2.2e-4
      at fresh transients off the grid (tests/test_learn.py states its tolerances).
    - ``"interpolate"``: the table itself, cubic in log10|change| and log10 energy over (gap,
      amplitude, log10 width) with :class:`scipy.interpolate.RegularGridInterpolator`: exact at
      the grid points, but between neighbouring amplitudes where switching runs away (13x
      apart at 1.3 and 1.4 V from 1.4 nm) the spline is off by up to 10 %, and between its
      last gap row (1.69 nm) and the bound it holds the row's change (2.2x the model's RESET
      at 1.697 nm).

    Amplitudes and widths outside the table's grid are clamped to its edges (:meth:`check`
    refuses them: the table is what checks the model, and only there), gaps to the model's
    bounds, and a change never takes the gap past them.  Results of the last 8 calls of up to
    :data:`MEMO_SIZE` pulses are kept, so :meth:`dgap` then :meth:`energy` on the same pulses
    integrates once.
    """
    def __init__(self, table: ResponseTable, kind: str = "device", method: str = "integrate", rtol: float = RTOL):
        method = units.choice(method, METHODS, "pulse model method")
        rtol = units.real(rtol, "PulseModel rtol (relative tolerance)", 1e-12, 1e-3)
        cell = table.cell(kind)
        self.kind = kind
        self.method = method
        self.rtol = rtol
        self.params = table.params
        self.v_gate = cell.get("v_gate")
        self.t_edge = float(cell["t_edge_s"])
        self.gap_nm = np.asarray(cell["gap_nm"], dtype=float)
        self.amplitude = np.asarray(cell["amplitude_v"], dtype=float)
        self.log_width = np.log10(np.asarray(cell["width_s"], dtype=float))
        self._cell = cell
        self._change, self._energy = {}, {}
        self._memo = {}
        self.transistor = MosfetParams() if kind == "1t1r" else None
        if method == "interpolate":
            self._splines()

    def _splines(self):
        from scipy.interpolate import RegularGridInterpolator

        axes = (self.gap_nm, self.amplitude, self.log_width)
        for polarity in POLARITIES:
            dgap = np.abs(np.asarray(self._cell[polarity]["dgap_nm"], dtype=float))
            energy = np.abs(np.asarray(self._cell[polarity]["energy_j"], dtype=float))
            self._change[polarity] = RegularGridInterpolator(axes, np.log10(np.maximum(dgap, FLOOR_NM)), method="cubic")
            self._energy[polarity] = RegularGridInterpolator(axes, np.log10(np.maximum(energy, FLOOR_J)), method="cubic")

    def check(self, v, width) -> None:
        """ValueError unless every |v| and width lies within the table's grid."""
        v, width = np.abs(np.asarray(v, float)), np.asarray(width, float)
        lo, hi = self.amplitude[[0, -1]]
        if np.any(v < lo * (1 - 1e-9)) or np.any(v > hi * (1 + 1e-9)):
            raise ValueError(f"pulse amplitude must lie within the table's [{lo:g}, {hi:g}] V ({self.kind} cell), "
                             f"got {v.min():g}..{v.max():g} V")
        lo, hi = 10 ** self.log_width[[0, -1]]
        if np.any(width < lo * (1 - 1e-9)) or np.any(width > hi * (1 + 1e-9)):
            raise ValueError(f"pulse width must lie within the table's [{lo:g}, {hi:g}] s, got {width.min():g}..{width.max():g} s")

    def on_grid(self, polarity: str) -> tuple[np.ndarray, np.ndarray]:
        """(gap change m, energy J) of this model at every grid point of its table for
        ``polarity`` ("set" or "reset"), shaped (gaps, amplitudes, widths) as the table's own
        ``dgap_nm`` and ``energy_j``: what the table checks the model against."""
        if polarity not in ("set", "reset"):
            raise ValueError(f"polarity must be 'set' or 'reset', got {polarity!r}")
        widths = np.asarray(self._cell["width_s"], dtype=float)
        gaps, volts, widths = np.meshgrid(self.gap_nm * 1e-9, self.amplitude, widths, indexing="ij")
        return self.response(gaps, volts if polarity == "set" else -volts, widths)

    def response(self, gap, v, width) -> tuple[np.ndarray, np.ndarray]:
        """(gap change m, energy J) of one pulse per broadcast element of ``gap`` (m), ``v``
        (V) and ``width`` (s); see :meth:`dgap` and :meth:`energy`."""
        try:
            gap, v, width = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (gap, v, width)))
        except (TypeError, ValueError) as err:
            raise ValueError("pulse gap (m), v (V) and width (s) must be real numbers or arrays that broadcast: "
                             f"{err}") from None
        for name, values in (("gap", gap), ("v", v), ("width", width)):
            if not np.all(np.isfinite(values)):
                raise ValueError(f"pulse {name} must be finite, got {values[~np.isfinite(values)].flat[0]}")
        key = (gap.shape, gap.tobytes(), v.tobytes(), width.tobytes()) if gap.size <= MEMO_SIZE else None
        if key in self._memo:
            change, energy = self._memo[key]
            return change.copy(), energy.copy()
        p = self.params
        gap = np.clip(gap, p.gap_min, p.gap_max)
        amplitude = np.clip(np.abs(v), self.amplitude[0], self.amplitude[-1])
        width = np.clip(width, 10 ** self.log_width[0], 10 ** self.log_width[-1])
        if self.method == "integrate":
            change, energy = self._integrate(gap, np.sign(v) * amplitude, width)
        else:
            change, energy = self._interpolate(gap, v, amplitude, width)
        change = np.clip(change, p.gap_min - gap, p.gap_max - gap)
        if key is not None:
            if len(self._memo) >= 8:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = (change, energy)
        return change.copy(), energy.copy()

    def _integrate(self, gap, v, width):
        from . import _pulse

        flat = [np.ascontiguousarray(a.ravel()) for a in (gap, v, width)]
        change, energy = np.zeros(flat[0].size), np.zeros(flat[0].size)
        steps = np.zeros(flat[0].size, dtype=np.int64)
        if self.kind == "1t1r":
            mosfet, v_gate, kind = self.transistor.as_array(), float(self.v_gate), 1
        else:
            mosfet, v_gate, kind = np.zeros(4), 0.0, 0
        _pulse.pulse_responses(kind, *flat, self.t_edge, self.params.as_array(), mosfet, R_LINE, R_LINE, v_gate,
                               self.rtol, 1e-14 * self.rtol, 1e-30, change, energy, steps)
        if np.any(steps < 0):
            i = int(np.argmax(steps < 0))
            raise ValueError(f"the pulse of {flat[1][i]:g} V, {flat[2][i]:g} s from gap {flat[0][i]:g} m took more than "
                             f"{_pulse.MAX_STEPS} integration steps; loosen rtol (now {self.rtol:g})")
        return change.reshape(gap.shape) * 1e-9, energy.reshape(gap.shape)

    def _interpolate(self, gap, v, amplitude, width):
        points = np.stack([np.clip(gap * 1e9, self.gap_nm[0], self.gap_nm[-1]), amplitude,
                           np.log10(width)], axis=-1)
        change, energy = np.zeros(v.shape), np.zeros(v.shape)
        for polarity, mask, sign in (("set", v > 0, -1.0), ("reset", v < 0, 1.0)):
            if np.any(mask):
                change[mask] = sign * 10 ** self._change[polarity](points[mask]) * 1e-9
                energy[mask] = 10 ** self._energy[polarity](points[mask])
        return change, energy

    def dgap(self, gap, v, width):
        """Mean gap change (m) per pulse: negative for SET (v > 0), positive for RESET."""
        return self.response(gap, v, width)[0]

    def dconductance(self, g_siemens, v, width, v_read: float = 0.2):
        """Mean conductance change (S, read at ``v_read``) of one pulse from conductance ``g_siemens``."""
        gap = gap_for_conductance(g_siemens, v_read, self.params)
        return conductance(v_read, gap + self.dgap(gap, v, width), self.params) - np.asarray(g_siemens, float)

    def energy(self, gap, v, width):
        """Energy (J) of one pulse delivered at the driver."""
        return self.response(gap, v, width)[1]

    def curve(self, v: float, width: float, n: int = 1024):
        """(gaps m, dgap m, energy J) on a fine gap grid for one pulse shape: the lookup the
        trainer steps with (``numpy.interp`` on it is what makes per-pulse updates cheap)."""
        gaps = np.linspace(self.gap_nm[0], self.gap_nm[-1], n) * 1e-9
        change, energy = self.response(gaps, v, width)
        return gaps, change, energy
