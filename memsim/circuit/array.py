"""The crossbar description shared by the netlist generator and the fast solver.

A crossbar has R rows (input lines) and C columns (output lines); cell (i, j) sits between
row node (i, j) and column node (i, j).  Rows are driven at their left end through one
segment ``r_row``; columns are sensed at their bottom end through one segment ``r_col`` into
a virtual-ground sense node (the badcrossbar convention, see docs/design.md).  Cell kinds:

- ``"ohmic"``: a linear conductance ``g[i, j]`` in S;
- ``"device"`` (selector-less, 0T1R): the compact RRAM model with gap ``gap[i, j]`` in m;
- ``"1t1r"``: the RRAM from the row node to an internal node, an NMOS from there to the
  column node, gates of row i at ``v_gate[i]`` V.

Every array is validated and copied read-only on construction, so a ``Crossbar`` is a value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import units
from ..devices.rram import DEFAULT_PARAMS, RRAMParams
from ..devices.transistor import MosfetParams

if TYPE_CHECKING:
    from ..devices.veriloga import VerilogA

KINDS = ("ohmic", "device", "1t1r")
#: Largest |voltage| accepted on RRAM cells (V).  The compact model's sinh(V/V0) is far outside
#: its physical range (and soon overflows) beyond a few volts; real arrays break down first.
V_LIMIT_RRAM = 10.0
#: Largest |voltage| accepted on ohmic crossbars (V): far beyond any circuit, but finite products.
V_LIMIT_OHMIC = 1e6
#: Largest |gate voltage| accepted on an access or select transistor (V): far above any logic
#: supply (oxides break down at a few volts; memsim's transistor cards are fitted at 1.2-1.8 V),
#: the same bound as the RRAM cells' voltages.
V_GATE_LIMIT = V_LIMIT_RRAM
#: Accepted wire resistance per segment: 0 (ideal) or within this range (ohm).  Below 1 nano-ohm
#: the wire conductance swamps every cell by more than double precision can resolve.
R_RANGE = (1e-9, 1e12)
#: Largest cell conductance accepted (S): a 1 milli-ohm cell.
G_MAX = 1e3
#: Largest g_max x r x N accepted (cell conductance S x wire resistance ohm x array size): at
#: 1e15 the solver's and ngspice's currents are both off by tens of percent (4x4, 1e3 S cells,
#: 1e12 ohm wires); at 1e9 the two still agree to 1e-7.  3D arrays take the same guard with
#: their largest segment (wire, via, plane or pillar) and longest line: two layers of 4x4 at
#: 1e3 S, 1e12 ohm were 150 % off ngspice; at 1e9 (vias included) they agree to 1e-7.
RATIO_MAX = 1e9


def check_v_gate(v_gate: np.ndarray) -> None:
    """Refuse gate voltages beyond +/-:data:`V_GATE_LIMIT` (2D 1T1R rows, 3D select transistors)."""
    peak = float(np.max(np.abs(v_gate)))
    if peak > V_GATE_LIMIT:
        raise ValueError(f"v_gate must stay within +/-{V_GATE_LIMIT:g} V (a physical gate; the transistor cards are "
                         f"fitted at 1.2-1.8 V), got {peak:.4g} V")


def check_ratio(g_max: float, r: float, n: int) -> None:
    """Refuse cells so much stronger than a wire segment that double precision cannot resolve
    the currents (the nodal matrix mixes 1/r and g; beyond this the answer is noise): ``g_max``
    the strongest cell (S), ``r`` the largest wire, via or plane segment (ohm), ``n`` the longest
    line (cells).  One guard for 2D crossbars and 3D arrays alike."""
    if g_max * r * n > RATIO_MAX:
        raise ValueError(
            f"cell conductance x wire resistance x array size must be at most {RATIO_MAX:g} (beyond it the "
            f"currents are below double precision), got {g_max:.3g} S x {r:.3g} ohm x {n}; lower the wire "
            "resistances or the conductances")


def as_real_array(value, name: str, ndim: int | None = None, min_value: float | None = None,
                  shape: tuple | None = None) -> np.ndarray:
    """Validate an array argument: real, finite, optionally of given ndim/shape and >= min_value.

    The array counterpart of :func:`memsim.units.real`, the check every user array passes:
    booleans are refused (a ``True`` cell is not 1 S), so are Python ints beyond double
    precision, and ``-0.0`` becomes ``0.0``.  Returns a read-only float64 copy.
    """
    if isinstance(value, (list, tuple)):
        _check_elements(value, name)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real, got complex values")
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype.kind == "b"):
        raise ValueError(f"{name} must be real numbers, got booleans")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if min_value is not None and np.any(array < min_value):
        raise ValueError(f"{name} must be >= {min_value}, got a minimum of {array.min():.6g}")
    array += 0.0  # -0.0 + 0.0 is +0.0: one zero for both engines
    array.setflags(write=False)
    return array


def _check_elements(value, name: str) -> None:
    """Refuse booleans and integers beyond double precision anywhere in nested lists (JSON
    ``true`` or ``10**400``), which numpy would otherwise turn into 1.0 or an OverflowError.
    One pass over each innermost list's element types, at C speed."""
    stack = [value]
    while stack:
        items = stack.pop()
        types = set(map(type, items))
        if any(issubclass(kind, (bool, np.bool_)) for kind in types):
            raise ValueError(f"{name} must be real numbers, got a boolean")
        if any(issubclass(kind, (list, tuple)) for kind in types):
            stack.extend(item for item in items if isinstance(item, (list, tuple)))
        if any(issubclass(kind, np.ndarray) for kind in types) and any(
                isinstance(item, np.ndarray) and item.dtype.kind == "b" for item in items):
            raise ValueError(f"{name} must be real numbers, got booleans")
        if any(issubclass(kind, int) for kind in types):
            for item in items:
                if isinstance(item, int):
                    units.real(item, name)


def as_resistance(value, name: str) -> float:
    """A wire resistance per segment: a finite real number >= 0 ohm."""
    try:
        value = units.real(value, name, 0.0)
    except ValueError:
        raise ValueError(f"{name} must be a finite resistance >= 0 ohm, got {units.shown(value)}") from None
    if value != 0 and not R_RANGE[0] <= value <= R_RANGE[1]:
        raise ValueError(f"{name} must be 0 ohm (ideal wire) or within [{R_RANGE[0]:g}, {R_RANGE[1]:g}] ohm "
                         f"per segment, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Crossbar:
    """A validated crossbar; build it with :meth:`ohmic`, :meth:`device` or :meth:`one_t_one_r`."""

    kind: str
    r_row: float
    r_col: float
    g: np.ndarray | None = None
    gap: np.ndarray | None = None
    device_params: RRAMParams | VerilogA = DEFAULT_PARAMS
    transistor: MosfetParams | None = None
    v_gate: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", units.choice(self.kind, KINDS, "cell kind"))
        object.__setattr__(self, "r_row", as_resistance(self.r_row, "r_row"))
        object.__setattr__(self, "r_col", as_resistance(self.r_col, "r_col"))
        if not isinstance(self.device_params, RRAMParams) and not _is_verilog_a(self.device_params):
            raise ValueError("device_params must be a memsim.devices.RRAMParams or a memsim.devices.VerilogA device")
        if self.kind == "ohmic":
            if self.g is None:
                raise ValueError("an ohmic crossbar needs g, the (rows, cols) conductances in S")
            object.__setattr__(self, "g", check_g(self.g, 2))
            if self.gap is not None or self.v_gate is not None:
                raise ValueError("an ohmic crossbar takes g only, not gap or v_gate")
            self._check_ratio(float(self.g.max()))
            return
        if self.gap is None:
            raise ValueError(f"a {self.kind} crossbar needs gap (m) or g_read (S)")
        gap = check_gap(self.gap, self.device_params, 2)
        object.__setattr__(self, "gap", gap)
        # The read conductance is monotone in the state: its extremes are at the extreme states.
        self._check_ratio(float(np.max(self.device_params.conductance(0.2, np.array([gap.min(), gap.max()])))))
        if self.kind == "device":
            if self.v_gate is not None or self.transistor is not None:
                raise ValueError("a selector-less (device) crossbar has no transistor or v_gate")
            return
        object.__setattr__(self, "transistor", check_transistor(self.transistor))
        v_gate = np.broadcast_to(as_real_array(self.v_gate if self.v_gate is not None else 1.8,
                                               "v_gate (V)"), (gap.shape[0],)).copy()
        check_v_gate(v_gate)
        v_gate.setflags(write=False)
        object.__setattr__(self, "v_gate", v_gate)

    def _check_ratio(self, g_max: float) -> None:
        check_ratio(g_max, max(self.r_row, self.r_col), max(self.cells.shape))

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def ohmic(cls, g, r_row: float = 1.0, r_col: float = 1.0) -> "Crossbar":
        """Linear cells: ``g`` (rows, cols) in S, wire resistance per segment in ohm."""
        return cls("ohmic", r_row, r_col, g=g)

    @classmethod
    def device(cls, gap=None, *, g_read=None, v_read: float = 0.2, r_row: float = 1.0,
               r_col: float = 1.0, params: RRAMParams = DEFAULT_PARAMS) -> "Crossbar":
        """Selector-less RRAM cells, given the gap (m) or the read conductance ``g_read`` (S at ``v_read``)."""
        return cls("device", r_row, r_col, gap=gap_from(gap, g_read, v_read, params), device_params=params)

    @classmethod
    def one_t_one_r(cls, gap=None, *, g_read=None, v_read: float = 0.2, v_gate=1.8,
                    transistor: MosfetParams | None = None, r_row: float = 1.0, r_col: float = 1.0,
                    params: RRAMParams = DEFAULT_PARAMS) -> "Crossbar":
        """1T1R cells: RRAM (gap in m, or ``g_read`` in S) in series with an NMOS; ``v_gate`` per row (V)."""
        return cls("1t1r", r_row, r_col, gap=gap_from(gap, g_read, v_read, params),
                   device_params=params, transistor=transistor, v_gate=v_gate)

    @classmethod
    def of_kind(cls, kind: str, g_read=None, *, gap=None, r_row: float = 1.0, r_col: float = 1.0,
                v_read: float = 0.2, v_gate=1.8, transistor: MosfetParams | None = None,
                params: RRAMParams = DEFAULT_PARAMS) -> "Crossbar":
        """A crossbar of cells of ``kind`` (one of :data:`KINDS`): ohmic cells of conductance
        ``g_read`` (S); RRAM cells given their gap (m) or the conductance ``g_read`` they read
        at ``v_read``; 1T1R cells with ``v_gate`` and ``transistor`` (level-1 defaults if None)."""
        kind = units.choice(kind, KINDS, "cell kind")
        if kind == "ohmic":
            if gap is not None or g_read is None:
                raise ValueError("ohmic cells take their conductances g_read (S), not a gap")
            return cls.ohmic(g_read, r_row, r_col)
        if kind == "device":
            return cls.device(gap, g_read=g_read, v_read=v_read, r_row=r_row, r_col=r_col, params=params)
        return cls.one_t_one_r(gap, g_read=g_read, v_read=v_read, v_gate=v_gate, transistor=transistor,
                               r_row=r_row, r_col=r_col, params=params)

    # -- views ----------------------------------------------------------------------------
    @property
    def cells(self) -> np.ndarray:
        """The per-cell state array: ``g`` for ohmic cells, ``gap`` otherwise."""
        return self.g if self.kind == "ohmic" else self.gap

    @property
    def shape(self) -> tuple[int, int]:
        return self.cells.shape

    @property
    def rows(self) -> int:
        return self.cells.shape[0]

    @property
    def cols(self) -> int:
        return self.cells.shape[1]

    def conductance(self, v_read: float = 0.2) -> np.ndarray:
        """Cell conductance (S): ``g`` for ohmic cells, the RRAM chord conductance at ``v_read`` otherwise."""
        if self.kind == "ohmic":
            return self.g
        return self.device_params.conductance(v_read, self.gap)

    def ideal_i_col(self, v) -> np.ndarray:
        """Column currents with ideal wires and (for 1T1R) an ideal switch: the target product.

        ``v``: (rows,) or (batch, rows) volts; returns (cols,) or (batch, cols) amperes.
        """
        v = check_inputs(self, v)
        if self.kind == "ohmic":
            return v @ self.g
        return self.device_params.current(v[..., :, None], self.gap).sum(axis=-2)

    def with_wires(self, r_row: float, r_col: float) -> "Crossbar":
        """The same cells with other wire resistances."""
        return Crossbar(self.kind, r_row, r_col, g=self.g, gap=self.gap, device_params=self.device_params,
                        transistor=self.transistor, v_gate=self.v_gate)

    def __repr__(self) -> str:
        return (f"Crossbar(kind={self.kind!r}, shape={self.shape}, r_row={self.r_row} ohm, "
                f"r_col={self.r_col} ohm)")


def _is_verilog_a(params) -> bool:
    from ..devices.veriloga import VerilogA  # loaded only when a cell is not the built-in model

    return isinstance(params, VerilogA)


def gap_from(gap, g_read, v_read, params, ndim: int = 2):
    """The gaps (m) given, or those that read ``g_read`` (S, ``ndim`` dimensions) at ``v_read``."""
    if (gap is None) == (g_read is None):
        raise ValueError("give exactly one of gap (m) and g_read (S)")
    if gap is not None:
        return gap
    g_read = as_real_array(g_read, "g_read (S)", ndim)
    return params.state_for_conductance(g_read, v_read)


def check_g(g, ndim: int) -> np.ndarray:
    """Ohmic cell conductances (S), ``ndim`` dimensions, in [0, G_MAX]."""
    g = as_real_array(g, "g (conductance, S)", ndim, 0.0)
    if np.any(g > G_MAX):
        raise ValueError(f"g must be at most {G_MAX:g} S per cell, got {g.max():.6g} S")
    return g


def check_gap(gap, params: RRAMParams | VerilogA, ndim: int) -> np.ndarray:
    """Cell states, ``ndim`` dimensions, within the model's bounds: RRAM gaps in m for the
    built-in model, V(s) in the model's unit for a Verilog-A device."""
    what, unit = ("gap (m)", "m") if isinstance(params, RRAMParams) else (f"state of {params.module}", "")
    low, high = params.state_bounds
    gap = as_real_array(gap, what, ndim, 0.0 if isinstance(params, RRAMParams) else None)
    tol = 1e-12 * max(abs(low), abs(high))
    if np.any(gap < low - tol) or np.any(gap > high + tol):
        raise ValueError(f"{what.split(' (')[0]} must lie within [{low:.3g}, {high:.3g}]{' ' + unit if unit else ''}, "
                         f"got [{gap.min():.3g}, {gap.max():.3g}]{' ' + unit if unit else ''}")
    return gap


def check_transistor(transistor) -> MosfetParams:
    """The access transistor: the level-1 defaults when None, else a MosfetParams."""
    if transistor is None:
        return MosfetParams()
    if not isinstance(transistor, MosfetParams):
        raise ValueError("transistor must be a memsim.devices.MosfetParams")
    return transistor


def check_inputs(xb: Crossbar, v) -> np.ndarray:
    """Validate input voltages for ``xb``: (rows,) or (batch, rows), finite volts."""
    v = as_real_array(v, "v (input voltages, V)")
    if v.ndim not in (1, 2) or v.shape[-1] != xb.rows:
        raise ValueError(f"v must have shape ({xb.rows},) or (batch, {xb.rows}) for this "
                         f"{xb.rows}x{xb.cols} crossbar, got {v.shape}")
    check_voltage(xb, v)
    return v


def check_voltage(xb: Crossbar, v) -> None:
    """Refuse voltages beyond :data:`V_LIMIT_RRAM` on RRAM crossbars, :data:`V_LIMIT_OHMIC` on ohmic ones."""
    peak = float(np.abs(v).max())
    if xb.kind != "ohmic" and peak > V_LIMIT_RRAM:
        raise ValueError(f"voltages on RRAM cells must stay within +/-{V_LIMIT_RRAM} V (the compact model's "
                         f"range), got {peak:.4g} V")
    if peak > V_LIMIT_OHMIC:
        raise ValueError(f"voltages must stay within +/-{V_LIMIT_OHMIC:g} V, got {peak:.4g} V")
