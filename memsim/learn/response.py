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
from ..devices.veriloga import VerilogA
from ..errors import FileError
from ..io import LIMITS, OUTPUT_DIR, check_format, read_bytes, read_json, read_npz, write_atomic

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


def check_device(params) -> RRAMParams | VerilogA:
    """The compact model a table is measured on: the built-in model's RRAMParams or a
    :class:`memsim.devices.VerilogA` device."""
    if not isinstance(params, (RRAMParams, VerilogA)):
        raise ValueError("a pulse response needs a memsim.devices.RRAMParams or a memsim.devices.VerilogA device, "
                         f"got {type(params).__name__}")
    return params


def state_keys(params) -> tuple[str, str, float]:
    """(state axis key, change key, metres or model units per stored unit) of a table's cells:
    the built-in model's gaps are stored in nm, a Verilog-A device's states in its own unit."""
    if isinstance(params, RRAMParams):
        return "gap_nm", "dgap_nm", 1e-9
    return "state", "dstate", 1.0


def device_info(device: VerilogA) -> dict:
    """What ties a table to a Verilog-A device: its module, the SHA-256 of its source and every
    parameter value (the defaults the .va declares included)."""
    return {"module": device.module, "source_sha256": device.sha256, "source": device.path.name,
            "params": dict(sorted(device.params.items()))}


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

    @classmethod
    def for_device(cls, device: VerilogA, kind: str = "device", *, states=None, amplitudes=None, widths=None,
                   n_states: int = 12, v_gate: float | None = None, t_edge: float = 1e-9) -> "Grid":
        """A grid for a Verilog-A device, ``states`` in the model's own unit.

        Defaults: ``n_states`` states spread over the device's state bounds (1 % and 99 % of the
        range at the ends, none on the bounds, where a windowed rate is 0); 8 amplitudes from
        0.3 to 1 times the device's ``v_max`` (so a V/2 half-select pulse of the top amplitude is
        on the grid); 4 widths (0.1, 0.2, 0.5, 1) x t_ref, t_ref the time the top amplitude
        takes to move the middle state by half the range in the slower polarity (from the
        device's rate), rounded to two digits within [10 ns, 1 ms].
        """
        device = check_device(device)
        if not isinstance(device, VerilogA):
            raise ValueError("Grid.for_device takes a memsim.devices.VerilogA device; the built-in model's grid is Grid()")
        lo, hi = device.state_bounds
        n_states = units.integer(n_states, "n_states", 4, 1000)
        if states is None:
            fractions = np.r_[0.01, np.linspace(0.05, 0.95, n_states - 2), 0.99]
            states = lo + (hi - lo) * fractions
        if amplitudes is None:
            amplitudes = np.round(device.v_max * np.linspace(0.3, 1.0, 8), 4)
        if widths is None:
            rate = np.abs(device.rate(np.array([device.v_max, -device.v_max]), 0.5 * (lo + hi)))
            slow = float(rate.min()) if rate.min() > 0 else float(rate.max())
            t_ref = 0.5 * (hi - lo) / slow if slow > 0 else 1e-3
            t_ref = float(np.clip(float(f"{t_ref:.2g}"), 1e-8, 1e-3))
            widths = tuple(float(f"{t_ref * f:.2g}") for f in (0.1, 0.2, 0.5, 1.0))
        grid = cls(kind, tuple(states), tuple(amplitudes), tuple(widths), v_gate, t_edge)
        states = np.asarray(grid.gaps)
        if states[0] < lo or states[-1] > hi:
            raise ValueError(f"Grid states must lie within the {device.module} state bounds [{lo:g}, {hi:g}], got "
                             f"[{states[0]:g}, {states[-1]:g}]")
        return grid

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


def check_cells(cells, source, axis_key: str = "gap_nm", change_key: str = "dgap_nm") -> list:
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
                      for key in (axis_key, "amplitude_v", "width_s"))
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
                                f"{change_key} and energy_j)")
            for key in (change_key, "energy_j"):
                try:
                    as_real_array(entry.get(key), key, 3, shape=shape)
                except ValueError as err:
                    raise FileError(f"{source}: the {kind} cell's {polarity} {err}") from None
    return cells


#: The default grids: a selector-less cell, and a 1T1R cell with a 1.5 V gate as compliance.
DEFAULT_GRIDS = (Grid("device"),
                 Grid("1t1r", amplitudes=tuple(np.round(np.arange(0.6, 2.8001, 0.2), 3)), v_gate=1.5))


def pulse_transient(kind: str, gap: float, v_pulse: float, width: float, *, v_gate: float | None = None,
                    t_edge: float = 1e-9, params: RRAMParams | VerilogA = DEFAULT_PARAMS) -> tuple[float, float]:
    """One ngspice transient of one pulse on one cell: (gap change in nm, energy in J); for a
    Verilog-A device ``gap`` is its state and the change is in the model's own unit.

    The energy is the integral of V(t) I(t) at the row driver over the whole transient (the
    cell, and in a 1T1R cell its transistor, take all of it: the single cell has no wires).
    """
    params = check_device(params)
    gap_array = np.full((1, 1), gap)
    if kind == "device":
        xb = Crossbar.device(gap_array, r_row=R_LINE, r_col=R_LINE, params=params)
    else:
        xb = Crossbar.one_t_one_r(gap_array, v_gate=v_gate, r_row=R_LINE, r_col=R_LINE, params=params)
    vectors = spice.run_netlist(netlist.program(xb, 0, 0, v_pulse, width, t_edge=t_edge), timeout=60.0)
    energy = float(np.trapezoid(vectors["v(in0)"] * -vectors["i(vin0)"], vectors["time"]))
    start = gap * 1e9 if isinstance(params, RRAMParams) else gap
    return float(vectors["v(x0_0)"][-1] - start), energy


def check_switching(device: VerilogA, states, amplitudes, widths, changes=None, *, floor: float = 1e-6) -> None:
    """ValueError (one line) unless the device's state moves by at least ``floor`` of its range
    somewhere on the grid in both polarities: estimated from the device's rate at the top
    amplitude and width before any transient (``changes`` None), or the measured changes
    ({"set": array, "reset": array}) after them."""
    lo, hi = device.state_bounds
    a_max, w_max = float(np.max(amplitudes)), float(np.max(widths))
    for polarity, sign in (("set", 1.0), ("reset", -1.0)):
        if changes is None:
            moved = float(np.max(np.abs(device.rate(sign * a_max, np.asarray(states))))) * w_max
        else:
            moved = float(np.max(np.abs(changes[polarity])))
        if not moved >= floor * (hi - lo):
            raise ValueError(f"the {device.module} device does not switch measurably on this grid: a "
                             f"{sign * a_max:+g} V pulse of {w_max:g} s moves its state by at most {moved:.3g} "
                             f"(under {floor:g} of its range [{lo:g}, {hi:g}]); give larger amplitudes or longer widths "
                             "(Grid.for_device(device, amplitudes=..., widths=...))")


def measure(grid: Grid, params: RRAMParams | VerilogA = DEFAULT_PARAMS, progress: bool = False) -> dict:
    """Run the transients of ``grid`` (both polarities): the cell entry of a table.  A
    Verilog-A device's grid (states in its unit) is refused before any transient when the
    device would not switch measurably on it, and after them when it did not."""
    from tqdm import tqdm

    params = check_device(params)
    axis_key, change_key, scale = state_keys(params)
    if isinstance(params, VerilogA):
        check_switching(params, grid.gaps, grid.amplitudes, grid.widths)
    shape = (len(grid.gaps), len(grid.amplitudes), len(grid.widths))
    entry = {"kind": grid.kind, "v_gate": grid.v_gate, "t_edge_s": grid.t_edge,
             axis_key: [g * 1e9 if scale != 1.0 else g for g in grid.gaps], "amplitude_v": list(grid.amplitudes),
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
            entry[polarity] = {change_key: dgap.tolist(), "energy_j": energy.tolist()}
    if isinstance(params, VerilogA):
        check_switching(params, grid.gaps, grid.amplitudes, grid.widths,
                        {polarity: entry[polarity][change_key] for polarity in POLARITIES})
    return entry


def _card_info(kind: str):
    if kind != "1t1r":
        return None, None

    mosfet = MosfetParams()
    return mosfet.card.name, mosfet.card_hash


@dataclass
class ResponseTable:
    """Measured pulse responses, one entry per cell (``"device"``, ``"1t1r"``), of the built-in
    model (``params`` an RRAMParams, gaps in nm) or of a Verilog-A device (``params`` a
    :class:`memsim.devices.VerilogA`, states and changes in the model's own unit, the table
    tied to the device's source SHA-256 and parameter values)."""
    cells: list
    params: RRAMParams | VerilogA = DEFAULT_PARAMS
    created: str = ""
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    @classmethod
    def generate(cls, grids=None, params: RRAMParams | VerilogA = DEFAULT_PARAMS,
                 progress: bool = False) -> "ResponseTable":
        """Run every grid's transients (``seconds``: how long they took).  ``grids`` default:
        :data:`DEFAULT_GRIDS` for the built-in model, ``Grid.for_device(device)`` (selector-less)
        for a Verilog-A device."""
        params = check_device(params)
        if grids is None:
            grids = DEFAULT_GRIDS if isinstance(params, RRAMParams) else (Grid.for_device(params),)
        start = time.perf_counter()
        cells = [measure(grid, params, progress) for grid in grids]
        for cell in cells:
            cell["card"], cell["card_sha256"] = _card_info(cell["kind"])
        return cls(cells, params, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter() - start)

    @property
    def device(self) -> VerilogA | None:
        """The Verilog-A device the table was measured on (None for the built-in model)."""
        return self.params if isinstance(self.params, VerilogA) else None

    def cell(self, kind: str = "device") -> dict:
        for cell in self.cells:
            if cell["kind"] == kind:
                return cell
        raise ValueError(f"the response table has no {kind!r} cell; it has {[c['kind'] for c in self.cells]}")

    def to_dict(self) -> dict:
        import dataclasses

        head = {"format": FORMAT, "version": VERSION}
        if self.device is not None:
            head["device"] = device_info(self.device)
        else:
            head.update(rram_model_sha256=model_hash(self.params), rram_params=dataclasses.asdict(self.params))
        return {**head, "created": self.created, "ngspice_seconds": self.seconds, "notes": self.notes,
                "cells": self.cells}

    def save(self, path=None) -> Path:
        """Write the table (default: the built-in model's :data:`DEFAULT_TABLE`, a Verilog-A
        device's ``memsim_output/pulse_response_MODULE.json``)."""
        import json

        if path is None:
            path = DEFAULT_TABLE if self.device is None else OUTPUT_DIR / f"pulse_response_{self.device.module}.json"
        return write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path=DEFAULT_TABLE, device: VerilogA | None = None) -> "ResponseTable":
        """Read a table; refuses another format or version, and a table whose RRAM model or
        transistor card no longer matches the one it was measured on (regenerate it with
        ``scripts/pulse_response.py``).  A Verilog-A device's table needs that ``device``, and
        is refused when the device's source or parameter values differ from the table's."""
        data = read_json(path, "pulse response table", limit=LIMITS["results"])
        check_format(data, path, "pulse response table", FORMAT, VERSION, FileError,
                     advice="regenerate it with scripts/pulse_response.py")
        if device is not None and not isinstance(device, VerilogA):
            raise ValueError(f"device must be a memsim.devices.VerilogA device, got {type(device).__name__}")
        stored = data.get("device")
        if stored is not None or device is not None:
            return cls._load_device(path, data, stored, device)
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

    @classmethod
    def _load_device(cls, path, data: dict, stored, device: VerilogA | None) -> "ResponseTable":
        if not isinstance(stored, dict):
            raise FileError(f"{path} is a table of the built-in RRAM model, not of the Verilog-A module "
                            f"{device.module}; load it without device=")
        module = stored.get("module")
        if device is None:
            raise FileError(f"{path} was measured on the Verilog-A module {units.shown(module)}: load it with "
                            "device=memsim.devices.VerilogA(...) of that model")
        if module != device.module or stored.get("source_sha256") != device.sha256:
            raise FileError(f"{path} was measured on Verilog-A module {units.shown(module)} of another source "
                            f"(SHA-256 differs from {device.path.name}'s {device.module}); measure the device again")
        if stored.get("params") != device_info(device)["params"]:
            theirs = stored.get("params") if isinstance(stored.get("params"), dict) else {}
            differ = sorted(k for k in set(theirs) | set(device.params) if theirs.get(k) != device.params.get(k))
            raise FileError(f"{path} was measured with other {device.module} parameter values ({', '.join(differ)} "
                            "differ); measure the device again or build it with the table's parameters")
        cells = check_cells(data.get("cells"), path, "state", "dstate")
        for cell in cells:
            if cell.get("kind") == "1t1r" and _card_info("1t1r")[1] != cell.get("card_sha256"):
                raise FileError(f"{path}: the 1T1R response was measured with another transistor card "
                                f"({cell.get('card')}, SHA-256 differs); measure the device again")
        return cls(cells, device, data.get("created", ""), data.get("ngspice_seconds", 0.0), data.get("notes", {}))


#: Methods of :class:`PulseModel`.
METHODS = ("integrate", "interpolate")
#: Relative tolerance of the integrator's step control; against scipy's LSODA at 1e-10 the
#: integrated change and energy agree to better than 1e-5 (tests/test_learn.py).
RTOL = 1e-6
#: Calls of at most this many pulses are remembered (the last 8 of them).
MEMO_SIZE = 1 << 16


#: The rate table's grid (states x voltages): 4-point Lagrange there is within 1e-5 of the
#: compiled Stanford-PKU model at the midpoints away from its smooth bounds (see RateTable).
RATE_GRID = (1025, 257)
#: Rates below this fraction of the table's largest |rate| are compared in absolute terms.
RATE_FLOOR = 1e-6
RATE_TAG, RATE_VERSION = "memsim-rate-table", 1


@dataclass(frozen=True, eq=False)
class RateTable:
    """A Verilog-A device's state rate dV(s)/dt on a uniform grid of state x voltage over
    [state_min, state_max] x [-v_max, v_max], the rate :class:`PulseModel` integrates over a
    pulse: 4-point Lagrange in both directions (:func:`memsim.learn._pulse.table_rate`), from
    the compiled model's ``device.rate`` at every node; cached beside the compiled model.

    ``packed``: [n_s, n_v, s_lo, ds, v_lo, dv, rate row-major]; ``error``: (in state, in
    voltage), the largest error at the midpoints between nodes (every 8th row) relative to
    max(|rate|, :data:`RATE_FLOOR` x the largest |rate|).  Smooth rates are interpolated to
    ~1e-5; where a model has a kink (a threshold voltage, a clipped window, a bound) the
    cubic is off near it by a fraction of the rate's change over one cell (measured, not
    refused: what decides is the pulse response against ngspice, tests/test_learn_veriloga.py).
    """

    packed: np.ndarray
    error: tuple

    @classmethod
    def build(cls, device: VerilogA, v_max: float, grid: tuple = RATE_GRID) -> "RateTable":
        import json

        from ..devices.veriloga import compiler

        n_s, n_v = (units.integer(n, "rate table points", 4, 1 << 14) for n in grid)
        key = hashlib.sha256(json.dumps([device.sha256, compiler()[1], device.module, sorted(device.params.items()),
                                         v_max, n_s, n_v, RATE_FLOOR]).encode()).hexdigest()[:24]
        path = device.cache_dir / f"{key}.rate.npz"
        if path.is_file():
            data = read_npz(read_bytes(path, "rate table", LIMITS["model"]), path, LIMITS["model"])
            return cls(np.asarray(data["packed"], dtype=float), tuple(float(e) for e in data["error"]))
        lo, hi = device.state_bounds
        table, error = cls._at(device, lo, hi, v_max, n_s, n_v)
        import io as _io

        buffer = _io.BytesIO()
        np.savez(buffer, header=np.array(json.dumps({"format": RATE_TAG, "version": RATE_VERSION})),
                 packed=table, error=np.array(error))
        write_atomic(path, buffer.getvalue())
        return cls(table, error)

    @staticmethod
    def _at(device, lo, hi, v_max, n_s, n_v):
        from . import _pulse

        s = np.linspace(lo, hi, n_s)
        v = np.linspace(-v_max, v_max, n_v)
        rate = device.rate(v[None, :], s[:, None])
        table = np.concatenate([[n_s, n_v, s[0], s[1] - s[0], v[0], v[1] - v[0]], rate.ravel()])
        floor = RATE_FLOOR * float(np.max(np.abs(rate)))
        error = []
        for ss, vv in ((0.5 * (s[1:] + s[:-1]), v[::8]), (s[::8], 0.5 * (v[1:] + v[:-1]))):
            ss, vv = np.broadcast_arrays(ss[:, None], vv[None, :])
            exact = device.rate(vv, ss)
            approx = np.empty(exact.size)
            _pulse.table_rates(np.ascontiguousarray(vv).ravel(), np.ascontiguousarray(ss).ravel(), table, approx)
            error.append(float(np.max(np.abs(approx - exact.ravel()) / np.maximum(np.abs(exact.ravel()), floor + 1e-300))))
        return table, tuple(error)

    def rate(self, v, state) -> np.ndarray:
        """The interpolated rate at ``v`` (V) and ``state`` (broadcast)."""
        from . import _pulse

        v, state = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(state, dtype=float))
        out = np.empty(v.size)
        _pulse.table_rates(np.ascontiguousarray(v).ravel(), np.ascontiguousarray(state).ravel(), self.packed, out)
        return out.reshape(v.shape)


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
        self.device = table.device
        self.state_min, self.state_max = self.params.state_bounds
        axis_key, self._change_key, self.scale = state_keys(self.params)
        self.v_gate = cell.get("v_gate")
        self.t_edge = float(cell["t_edge_s"])
        #: The table's states in its stored unit (nm for the built-in model's gaps).
        self.gap_nm = np.asarray(cell[axis_key], dtype=float)
        self.amplitude = np.asarray(cell["amplitude_v"], dtype=float)
        self.log_width = np.log10(np.asarray(cell["width_s"], dtype=float))
        self._cell = cell
        self._change, self._energy = {}, {}
        self._memo = {}
        self.transistor = MosfetParams() if kind == "1t1r" else None
        self._rate = None
        if method == "interpolate":
            self._splines()
        elif self.device is not None:
            if kind == "1t1r":
                raise ValueError("the integrated pulse model of a Verilog-A device is selector-less only (its 1T1R "
                                 "series solve is not checked against ngspice); use method='interpolate' for a 1t1r cell")
            if self.device.v_max < self.amplitude[-1] * (1 - 1e-12):
                raise ValueError(f"the {self.device.module} device's v_max ({self.device.v_max:g} V, the range of its "
                                 f"current table) is below the table's largest amplitude {self.amplitude[-1]:g} V; build "
                                 f"the device with v_max >= {self.amplitude[-1]:g}")
            self._rate = RateTable.build(self.device, float(self.amplitude[-1]))

    def _splines(self):
        from scipy.interpolate import RegularGridInterpolator

        axes = (self.gap_nm, self.amplitude, self.log_width)
        floor = FLOOR_NM if self.device is None else FLOOR_NM * (self.state_max - self.state_min)
        for polarity in POLARITIES:
            dgap = np.abs(np.asarray(self._cell[polarity][self._change_key], dtype=float))
            energy = np.abs(np.asarray(self._cell[polarity]["energy_j"], dtype=float))
            self._change[polarity] = RegularGridInterpolator(axes, np.log10(np.maximum(dgap, floor)), method="cubic")
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
        gaps, volts, widths = np.meshgrid(self.gap_nm * self.scale, self.amplitude, widths, indexing="ij")
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
        gap = np.clip(gap, self.state_min, self.state_max)
        amplitude = np.clip(np.abs(v), self.amplitude[0], self.amplitude[-1])
        width = np.clip(width, 10 ** self.log_width[0], 10 ** self.log_width[-1])
        if self.method == "integrate":
            change, energy = self._integrate(gap, np.sign(v) * amplitude, width)
        else:
            change, energy = self._interpolate(gap, v, amplitude, width)
        change = np.clip(change, self.state_min - gap, self.state_max - gap)
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
        if self.device is None:  # the gap in m, its change integrated in nm
            rate, unit, atol = np.zeros(0), 1e-9, 1e-14 * self.rtol
        else:
            rate, unit, atol = self._rate.packed, 1.0, 1e-14 * self.rtol * (self.state_max - self.state_min)
        _pulse.pulse_responses(kind, *flat, self.t_edge, self.params.as_array(), rate, unit, mosfet, R_LINE, R_LINE,
                               v_gate, self.rtol, atol, 1e-30, change, energy, steps)
        if np.any(steps < 0):
            i = int(np.argmax(steps < 0))
            raise ValueError(f"the pulse of {flat[1][i]:g} V, {flat[2][i]:g} s from gap {flat[0][i]:g} m took more than "
                             f"{_pulse.MAX_STEPS} integration steps; loosen rtol (now {self.rtol:g})")
        return change.reshape(gap.shape) * unit, energy.reshape(gap.shape)

    def _interpolate(self, gap, v, amplitude, width):
        points = np.stack([np.clip(gap / self.scale, self.gap_nm[0], self.gap_nm[-1]), amplitude,
                           np.log10(width)], axis=-1)
        change, energy = np.zeros(v.shape), np.zeros(v.shape)
        for polarity, mask, sign in (("set", v > 0, -1.0), ("reset", v < 0, 1.0)):
            if np.any(mask):
                change[mask] = sign * 10 ** self._change[polarity](points[mask]) * self.scale
                energy[mask] = 10 ** self._energy[polarity](points[mask])
        return change, energy

    def dgap(self, gap, v, width):
        """Mean gap change (m) per pulse: negative for SET (v > 0), positive for RESET.  For a
        Verilog-A device: the state's change in the model's unit (its sign is the model's)."""
        return self.response(gap, v, width)[0]

    #: The same for any model: the state's change per pulse.
    dstate = dgap

    def conductance(self, state, v_read: float = 0.2):
        """Read conductance (S) at ``v_read`` of a cell in ``state`` (the model's own function)."""
        if self.device is not None:
            return self.device.conductance(v_read, state)
        return conductance(v_read, state, self.params)

    def state_for_conductance(self, g_siemens, v_read: float = 0.2):
        """The state that reads ``g_siemens`` (S) at ``v_read``."""
        if self.device is not None:
            return self.device.state_for_conductance(g_siemens, v_read)
        return gap_for_conductance(g_siemens, v_read, self.params)

    def dconductance(self, g_siemens, v, width, v_read: float = 0.2):
        """Mean conductance change (S, read at ``v_read``) of one pulse from conductance ``g_siemens``."""
        gap = self.state_for_conductance(g_siemens, v_read)
        return self.conductance(gap + self.dgap(gap, v, width), v_read) - np.asarray(g_siemens, float)

    def energy(self, gap, v, width):
        """Energy (J) of one pulse delivered at the driver."""
        return self.response(gap, v, width)[1]

    def curve(self, v: float, width: float, n: int = 1024):
        """(gaps m, dgap m, energy J) on a fine gap grid for one pulse shape: the lookup the
        trainer steps with (``numpy.interp`` on it is what makes per-pulse updates cheap)."""
        gaps = np.linspace(self.gap_nm[0], self.gap_nm[-1], n) * self.scale
        change, energy = self.response(gaps, v, width)
        return gaps, change, energy
