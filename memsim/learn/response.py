"""Pulse response of the compact model, measured in ngspice, stored and interpolated.

A programming pulse of amplitude ``V`` and width ``t`` moves a cell's gap by an amount that
depends on the gap itself (the Stanford-PKU model's field enhancement gamma(g) and its Joule
heating, see :mod:`memsim.devices.rram`) and, in a 1T1R cell, on the access transistor,
whose gate voltage limits the current (compliance).  :func:`measure` runs one ngspice
transient (:func:`memsim.circuit.netlist.program`, the ``rram_tran`` subcircuit) per grid point
(gap x amplitude x width, SET and RESET) on a single cell and records

- the mean gap change per pulse (nm), from the gap node at the end of the transient, and
- the energy of the pulse, the integral of V(t) I(t) dt at the row driver (J).

:class:`ResponseTable` holds those grids, is written as a versioned JSON file tied to the
RRAM model text and the transistor card by SHA-256 (default:
``netlists/models/rram_pulse_response.json``, made by ``scripts/pulse_response.py``), and
:class:`PulseModel` evaluates it between grid points: cubic interpolation of log10|change|
and log10 energy over (gap, amplitude, log10 width) with :class:`scipy.interpolate.RegularGridInterpolator`.

Cycle-to-cycle noise: every pulse is a programming event, and the variability model
(:class:`memsim.devices.presets.Variability`) gives the spread of one event as a log-normal
factor sigma_c2c on the conductance, i.e. sigma_c2c * g0 in gap (G ~ exp(-gap/g0)).
:class:`PulseModel` makes that the spread of the nominal pulse (the pulse the trainer uses, at
the middle of its conductance window) and keeps it proportional to the mean change
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
        xb = Crossbar.device(gap_array, r_row=1e-3, r_col=1e-3, params=params)
    else:
        xb = Crossbar.one_t_one_r(gap_array, v_gate=v_gate, r_row=1e-3, r_col=1e-3, params=params)
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


class PulseModel:
    """A cell's pulse response from a :class:`ResponseTable`, between its grid points.

    ``dgap(gap, v, width)``: mean gap change (m) of one pulse of ``v`` volts (> 0 SET, < 0
    RESET) and ``width`` s from gap ``gap`` (m); ``energy(gap, v, width)`` J; both broadcast.
    Outside the grid the inputs are clamped to its edges (:meth:`check` refuses amplitudes and
    widths outside it), and a change never takes the gap past the model's bounds.
    """
    def __init__(self, table: ResponseTable, kind: str = "device"):
        from scipy.interpolate import RegularGridInterpolator

        cell = table.cell(kind)
        self.kind = kind
        self.params = table.params
        self.v_gate = cell.get("v_gate")
        self.gap_nm = np.asarray(cell["gap_nm"], dtype=float)
        self.amplitude = np.asarray(cell["amplitude_v"], dtype=float)
        self.log_width = np.log10(np.asarray(cell["width_s"], dtype=float))
        axes = (self.gap_nm, self.amplitude, self.log_width)
        self._change, self._energy = {}, {}
        for polarity in POLARITIES:
            dgap = np.abs(np.asarray(cell[polarity]["dgap_nm"], dtype=float))
            energy = np.abs(np.asarray(cell[polarity]["energy_j"], dtype=float))
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

    def _points(self, gap, v, width):
        gap, v, width = np.broadcast_arrays(np.asarray(gap, float) * 1e9, np.asarray(v, float), np.asarray(width, float))
        points = np.stack([np.clip(gap, self.gap_nm[0], self.gap_nm[-1]),
                           np.clip(np.abs(v), self.amplitude[0], self.amplitude[-1]),
                           np.clip(np.log10(width), self.log_width[0], self.log_width[-1])], axis=-1)
        return points, v

    def dgap(self, gap, v, width):
        """Mean gap change (m) per pulse: negative for SET (v > 0), positive for RESET."""
        points, v = self._points(gap, v, width)
        out = np.zeros(v.shape)
        for polarity, mask, sign in (("set", v > 0, -1.0), ("reset", v < 0, 1.0)):
            if np.any(mask):
                out[mask] = sign * 10 ** self._change[polarity](points[mask]) * 1e-9
        gap = np.broadcast_to(np.asarray(gap, float), out.shape)
        return np.clip(out, self.params.gap_min - gap, self.params.gap_max - gap)

    def dconductance(self, g_siemens, v, width, v_read: float = 0.2):
        """Mean conductance change (S, read at ``v_read``) of one pulse from conductance ``g_siemens``."""
        gap = gap_for_conductance(g_siemens, v_read, self.params)
        return conductance(v_read, gap + self.dgap(gap, v, width), self.params) - np.asarray(g_siemens, float)

    def energy(self, gap, v, width):
        """Energy (J) of one pulse delivered at the driver."""
        points, v = self._points(gap, v, width)
        out = np.zeros(v.shape)
        for polarity, mask in (("set", v > 0), ("reset", v < 0)):
            if np.any(mask):
                out[mask] = 10 ** self._energy[polarity](points[mask])
        return out

    def curve(self, v: float, width: float, n: int = 1024):
        """(gaps m, dgap m, energy J) on a fine gap grid for one pulse shape: the lookup the
        trainer steps with (``numpy.interp`` on it is what makes per-pulse updates cheap)."""
        gaps = np.linspace(self.gap_nm[0], self.gap_nm[-1], n) * 1e-9
        return gaps, self.dgap(gaps, v, width), self.energy(gaps, v, width)
