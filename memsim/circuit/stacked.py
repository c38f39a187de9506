"""3D RRAM arrays: stacked cross-point layers and vertical RRAM, as one circuit both engines take.

Two descriptions, validated and read-only like :class:`memsim.Crossbar` (conventions in
docs/design.md, "3D arrays"):

- :class:`StackedCrossbar`: L cell layers of R x C cells between L + 1 alternating line
  layers.  Line layer k is a word-line layer for even k (R lines along the columns, one
  ``r_row`` between neighbouring cells) and a bit-line layer for odd k (C lines along the rows,
  one ``r_col`` between neighbours); each line layer is shared by the cell layers above and
  below it.  Cell layer l joins line layers l and l + 1, its cell (i, j) runs from word line i
  (the RRAM's top electrode) to bit line j.  A driven or held line leaves the stack at its end
  (word lines at column 0, bit lines at row R - 1) through one wire segment and a via stack of
  k + 1 vias of ``r_via`` each down to the periphery under the array.
- :class:`VerticalArray`: L horizontal word planes and P_r x P_c vertical pillars; cell
  (l, i, j) runs from plane l (top electrode) to pillar (i, j).  A plane is a square grid of
  ``r_plane`` (its sheet resistance, one square per pillar pitch) contacted along its edge at
  column 0 (one ``r_plane`` from the plane's contact to each site (i, 0)); a pillar has one
  ``r_pillar`` between neighbouring planes and one from plane 0 to its foot.  With 1T1R the
  foot reaches the pillar's terminal through one select NMOS (gate at ``v_gate[i, j]``).

:func:`circuit` turns a description and a :class:`StackBias` into a :class:`Circuit`: numbered
nodes, wire resistors, cells, select transistors and held terminals.  The netlist writer
(:mod:`memsim.circuit.netlist3d`) and the sparse solver (:mod:`memsim.solver.stacked`) both read that
one circuit, so they solve the same network by construction of its topology.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units
from ..devices.presets import DevicePreset, Variability
from ..devices.rram import DEFAULT_PARAMS, RRAMParams, conductance, current
from ..devices.transistor import MosfetParams
from .array import (V_LIMIT_OHMIC, V_LIMIT_RRAM, as_real_array, as_resistance, check_g, check_gap,
                    check_ratio, check_transistor, check_v_gate, gap_from)
from .bias import SCHEMES, _UNSELECTED

STACK_KINDS = ("ohmic", "device")
VERTICAL_KINDS = ("ohmic", "device", "1t1r")
#: Layer counts accepted (cell layers of a stack, planes of a vertical array).
MAX_LAYERS = 64
#: What the other line layers do during an MVM on one cell layer of a stack.
MVM_OTHERS = ("floating", "grounded")


def _cells(kind, g, gap, params, name):
    if not isinstance(params, RRAMParams):
        raise ValueError("device_params must be a memsim.devices.RRAMParams")
    if kind == "ohmic":
        if g is None or gap is not None:
            raise ValueError(f"an ohmic {name} takes g, the (layers, rows, cols) conductances in S, and no gap")
        cells = check_g(g, 3)
    else:
        if gap is None or g is not None:
            raise ValueError(f"a {kind} {name} takes gap (m) or g_read (S), not g")
        cells = check_gap(gap, params, 3)
    if cells.shape[0] > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS} layers are accepted, got {cells.shape[0]}")
    return cells


def _check_ratio(kind, cells, params, r: float, n: int) -> None:
    """The 2D guard on g x r x size (:func:`memsim.circuit.array.check_ratio`) for a 3D array."""
    g_max = float(cells.max()) if kind == "ohmic" else float(conductance(0.2, cells.min(), params))
    check_ratio(g_max, r, n)


class _Array3D:
    """Shared views of the two descriptions."""

    kind: str
    g: np.ndarray | None
    gap: np.ndarray | None
    device_params: RRAMParams

    @property
    def cells(self) -> np.ndarray:
        """Per-cell state (layers, ., .): ``g`` (S) for ohmic cells, ``gap`` (m) otherwise."""
        return self.g if self.kind == "ohmic" else self.gap

    @property
    def layers(self) -> int:
        return self.cells.shape[0]

    def conductance(self, v_read: float = 0.2) -> np.ndarray:
        """Cell conductance (S), the chord conductance at ``v_read`` for RRAM cells."""
        return self.g if self.kind == "ohmic" else conductance(v_read, self.gap, self.device_params)

    def check_voltage(self, v) -> None:
        peak = float(np.max(np.abs(v))) if np.size(v) else 0.0
        limit = V_LIMIT_OHMIC if self.kind == "ohmic" else V_LIMIT_RRAM
        if peak > limit:
            raise ValueError(f"voltages on {self.kind} cells must stay within +/-{limit:g} V, got {peak:.4g} V")


@dataclass(frozen=True, eq=False)
class StackedCrossbar(_Array3D):
    """Stacked cross-point layers; build with :meth:`ohmic` or :meth:`device`.  Shapes (L, R, C)."""

    kind: str
    r_row: float
    r_col: float
    r_via: float
    g: np.ndarray | None = None
    gap: np.ndarray | None = None
    device_params: RRAMParams = DEFAULT_PARAMS
    transistor = None

    def __post_init__(self):
        object.__setattr__(self, "kind", units.choice(self.kind, STACK_KINDS, "stacked cell kind"))
        for name in ("r_row", "r_col", "r_via"):
            object.__setattr__(self, name, as_resistance(getattr(self, name), name))
        cells = _cells(self.kind, self.g, self.gap, self.device_params, "stack")
        object.__setattr__(self, "g" if self.kind == "ohmic" else "gap", cells)
        _check_ratio(self.kind, cells, self.device_params, max(self.r_row, self.r_col, self.r_via),
                     max(cells.shape[1:]))

    @classmethod
    def ohmic(cls, g, r_row: float = 1.0, r_col: float = 1.0, r_via: float = 0.0) -> "StackedCrossbar":
        """Linear cells ``g`` (layers, rows, cols) in S; wire and via resistances in ohm."""
        return cls("ohmic", r_row, r_col, r_via, g=g)

    @classmethod
    def device(cls, gap=None, *, g_read=None, v_read: float = 0.2, r_row: float = 1.0, r_col: float = 1.0,
               r_via: float = 0.0, params: RRAMParams = DEFAULT_PARAMS) -> "StackedCrossbar":
        """Selector-less RRAM cells, by gap (m) or read conductance ``g_read`` (S at ``v_read``)."""
        return cls("device", r_row, r_col, r_via, gap=gap_from(gap, g_read, v_read, params, ndim=3), device_params=params)

    @property
    def rows(self) -> int:
        return self.cells.shape[1]

    @property
    def cols(self) -> int:
        return self.cells.shape[2]

    @property
    def line_layers(self) -> int:
        return self.layers + 1

    def lines_in(self, k: int) -> int:
        """Lines in line layer k: R word lines (k even) or C bit lines (k odd)."""
        return self.rows if k % 2 == 0 else self.cols

    def word_bit_layers(self, layer: int) -> tuple[int, int]:
        """(word-line layer, bit-line layer) of cell layer ``layer``."""
        return (layer, layer + 1) if layer % 2 == 0 else (layer + 1, layer)

    def __repr__(self) -> str:
        return (f"StackedCrossbar(kind={self.kind!r}, layers={self.layers}, shape={self.rows}x{self.cols}, "
                f"r_row={self.r_row} ohm, r_col={self.r_col} ohm, r_via={self.r_via} ohm)")


@dataclass(frozen=True, eq=False)
class VerticalArray(_Array3D):
    """Vertical RRAM; build with :meth:`ohmic`, :meth:`device` or :meth:`one_t_one_r`.  Shapes (L, P_r, P_c)."""

    kind: str
    r_plane: float
    r_pillar: float
    g: np.ndarray | None = None
    gap: np.ndarray | None = None
    device_params: RRAMParams = DEFAULT_PARAMS
    transistor: MosfetParams | None = None
    v_gate: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", units.choice(self.kind, VERTICAL_KINDS, "vertical cell kind"))
        for name in ("r_plane", "r_pillar"):
            object.__setattr__(self, name, as_resistance(getattr(self, name), name))
        cells = _cells("ohmic" if self.kind == "ohmic" else "device", self.g, self.gap, self.device_params,
                       "vertical array")
        object.__setattr__(self, "g" if self.kind == "ohmic" else "gap", cells)
        _check_ratio(self.kind, cells, self.device_params, max(self.r_plane, self.r_pillar), max(cells.shape))
        if self.kind != "1t1r":
            if self.transistor is not None or self.v_gate is not None:
                raise ValueError(f"a {self.kind} vertical array has no select transistor or v_gate")
            return
        object.__setattr__(self, "transistor", check_transistor(self.transistor))
        v_gate = as_real_array(1.8 if self.v_gate is None else self.v_gate, "v_gate (V)")
        if v_gate.ndim > 2:
            raise ValueError(f"v_gate must be a scalar or (pillar rows, pillar cols) volts, got shape {v_gate.shape}")
        try:
            v_gate = np.broadcast_to(v_gate, cells.shape[1:]).copy()
        except ValueError:
            raise ValueError(f"v_gate must broadcast to the pillars' shape {cells.shape[1:]}, got {v_gate.shape}") from None
        check_v_gate(v_gate)
        v_gate.setflags(write=False)
        object.__setattr__(self, "v_gate", v_gate)

    @classmethod
    def ohmic(cls, g, r_plane: float = 1.0, r_pillar: float = 1.0) -> "VerticalArray":
        """Linear cells ``g`` (planes, pillar rows, pillar cols) in S."""
        return cls("ohmic", r_plane, r_pillar, g=g)

    @classmethod
    def device(cls, gap=None, *, g_read=None, v_read: float = 0.2, r_plane: float = 1.0, r_pillar: float = 1.0,
               params: RRAMParams = DEFAULT_PARAMS) -> "VerticalArray":
        """Selector-less RRAM cells, by gap (m) or read conductance ``g_read`` (S at ``v_read``)."""
        return cls("device", r_plane, r_pillar, gap=gap_from(gap, g_read, v_read, params, ndim=3), device_params=params)

    @classmethod
    def one_t_one_r(cls, gap=None, *, g_read=None, v_read: float = 0.2, v_gate=1.8,
                    transistor: MosfetParams | None = None, r_plane: float = 1.0, r_pillar: float = 1.0,
                    params: RRAMParams = DEFAULT_PARAMS) -> "VerticalArray":
        """RRAM cells with one select NMOS per pillar at its foot, gates at ``v_gate`` (V, per pillar)."""
        return cls("1t1r", r_plane, r_pillar, gap=gap_from(gap, g_read, v_read, params, ndim=3), device_params=params,
                   transistor=transistor, v_gate=v_gate)

    @property
    def pillar_shape(self) -> tuple[int, int]:
        return self.cells.shape[1:]

    def __repr__(self) -> str:
        return (f"VerticalArray(kind={self.kind!r}, planes={self.layers}, pillars={self.pillar_shape}, "
                f"r_plane={self.r_plane} ohm, r_pillar={self.r_pillar} ohm)")


# -- bias -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StackBias:
    """Terminal voltages by group (V, NaN where a line, plane or pillar floats).

    Groups: ``"line{k}"`` (k = 0..L) of a stack, shape (R,) or (C,); ``"plane"`` (L,) and
    ``"pillar"`` (P_r, P_c) of a vertical array.  ``v_gate`` (P_r, P_c) overrides a 1T1R
    vertical array's gate voltages (a read turns the unselected pillars' transistors off).
    """

    v: dict
    scheme: str = "mvm"
    selected: tuple | None = None
    v_gate: np.ndarray | None = None


def _groups(array) -> dict:
    if isinstance(array, StackedCrossbar):
        return {f"line{k}": (array.lines_in(k),) for k in range(array.line_layers)}
    if isinstance(array, VerticalArray):
        return {"plane": (array.layers,), "pillar": array.pillar_shape}
    raise ValueError(f"expected a StackedCrossbar or VerticalArray, got {type(array).__name__}")


def _holds_booleans(value) -> bool:
    """Whether a bias group holds booleans (numpy would read True as 1 V)."""
    if isinstance(value, (list, tuple)):
        try:
            return any(isinstance(x, (bool, np.bool_)) for x in np.ravel(np.array(value, dtype=object)))
        except ValueError:  # ragged: refused by the shape check
            return False
    return np.asarray(value).dtype.kind == "b"


def check_bias(array, bias: StackBias) -> StackBias:
    """Validate a bias against ``array``: every group present with its shape, finite or NaN volts."""
    if not isinstance(bias, StackBias):
        raise ValueError(f"bias must be a memsim.circuit.stacked.StackBias, got {type(bias).__name__}")
    shapes = _groups(array)
    if set(bias.v) != set(shapes):
        raise ValueError(f"bias must give the groups {sorted(shapes)}, got {sorted(map(str, bias.v))}")
    clean = {}
    for name, shape in shapes.items():
        raw = bias.v[name]
        if _holds_booleans(raw):
            raise ValueError(f"bias {name} must be volts (NaN: floating), got booleans")
        try:
            values = np.array(raw, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"bias {name} must be an array of volts (NaN: floating)") from None
        values += 0.0  # -0.0 is 0.0, as for every other number
        if values.shape != shape:
            raise ValueError(f"bias {name} must have shape {shape}, got {values.shape}")
        if np.any(np.isinf(values)):
            raise ValueError(f"bias {name} must be finite volts or NaN (floating)")
        array.check_voltage(values[~np.isnan(values)])
        values.setflags(write=False)
        clean[name] = values
    v_gate = None
    if bias.v_gate is not None:
        if getattr(array, "kind", None) != "1t1r":
            raise ValueError("v_gate in a bias is for 1T1R vertical arrays only")
        v_gate = as_real_array(bias.v_gate, "bias v_gate (V)", 2, shape=array.pillar_shape)
        check_v_gate(v_gate)
    return StackBias(clean, bias.scheme, bias.selected, v_gate)


def _volts(value, what="read voltage"):
    try:
        return units.real(value)
    except ValueError:
        raise ValueError(f"{what} must be a finite number of volts, got {units.shown(value)}") from None


def read_bias(array, cell, v_read: float = 0.2, scheme: str = "v/2") -> StackBias:
    """Bias for reading (or writing) ``cell`` = (layer, row, col) at ``v_read`` V with ``scheme``.

    The selected word line (stack) or plane (vertical) is at ``v_read``, the selected bit line or
    pillar at 0 V; every other word line or plane at the scheme's row voltage (floating, V/2,
    V/3, 0 V), every other bit line or pillar at its column voltage (floating, V/2, 2V/3, 0 V),
    in every layer.  A 1T1R vertical array opens the selected pillar's transistor only.
    """
    scheme = units.choice(scheme, SCHEMES, "bias scheme")
    if not isinstance(cell, tuple) or len(cell) != 3:
        raise ValueError(f"cell must be a (layer, row, col) tuple, got {units.shown(cell)}")
    shape = array.cells.shape
    layer, row, col = (units.index(v, n, what) for v, n, what in zip(cell, shape, ("layer", "row", "col")))
    v_read = _volts(v_read)
    array.check_voltage(v_read)
    (rn, rd), (cn, cd) = _UNSELECTED[scheme]
    v_word, v_bit = rn * v_read / rd, cn * v_read / cd
    if isinstance(array, StackedCrossbar):
        v = {}
        for k in range(array.line_layers):
            v[f"line{k}"] = np.full(array.lines_in(k), v_word if k % 2 == 0 else v_bit)
        word, bit = array.word_bit_layers(layer)
        v[f"line{word}"][row] = v_read
        v[f"line{bit}"][col] = 0.0
        return check_bias(array, StackBias(v, scheme, (layer, row, col)))
    plane = np.full(array.layers, v_word)
    pillar = np.full(array.pillar_shape, v_bit)
    plane[layer] = v_read
    pillar[row, col] = 0.0
    v_gate = None
    if isinstance(array, VerticalArray) and array.kind == "1t1r":
        v_gate = np.zeros(array.pillar_shape)
        v_gate[row, col] = array.v_gate[row, col]
    return check_bias(array, StackBias({"plane": plane, "pillar": pillar}, scheme, (layer, row, col), v_gate))


def mvm_bias(array, v_in, layer: int | None = None, others: str = "floating") -> StackBias:
    """Bias of an MVM read.

    Stack: cell layer ``layer``'s word lines driven at ``v_in`` (R,) V, its bit lines sensed at
    0 V, every other line layer ``others`` (``"floating"`` or ``"grounded"``).  Vertical array:
    the planes driven at ``v_in`` (L,) V, every pillar sensed at 0 V (``layer`` must be None).
    """
    v_in = as_real_array(v_in, "v_in (input voltages, V)", 1)
    array.check_voltage(v_in)
    if isinstance(array, VerticalArray):
        if layer is not None:
            raise ValueError("a vertical array's MVM drives every plane: pass v_in of shape (planes,) and no layer")
        if v_in.shape != (array.layers,):
            raise ValueError(f"v_in must have shape ({array.layers},) (one voltage per plane), got {v_in.shape}")
        return check_bias(array, StackBias({"plane": v_in, "pillar": np.zeros(array.pillar_shape)}, "mvm"))
    if not isinstance(array, StackedCrossbar):
        raise ValueError(f"expected a StackedCrossbar or VerticalArray, got {type(array).__name__}")
    layer = units.index(0 if layer is None else layer, array.layers, "layer")
    others = units.choice(others, MVM_OTHERS, "others (the unselected line layers)")
    if v_in.shape != (array.rows,):
        raise ValueError(f"v_in must have shape ({array.rows},) (one voltage per word line), got {v_in.shape}")
    word, bit = array.word_bit_layers(layer)
    fill = math.nan if others == "floating" else 0.0
    v = {f"line{k}": np.full(array.lines_in(k), fill) for k in range(array.line_layers)}
    v[f"line{word}"] = v_in
    v[f"line{bit}"] = np.zeros(array.cols)
    return check_bias(array, StackBias(v, f"mvm layer {layer}, others {others}", (layer,)))


def ideal_mvm(array, v_in, layer: int | None = None) -> np.ndarray:
    """The target product with ideal wires and no sneak paths: stack (C,) = v_in @ G[layer];
    vertical (P_r, P_c) = sum over planes of v_in[l] G[l] (chord conductances at each v_in)."""
    bias = mvm_bias(array, v_in, layer)
    if isinstance(array, VerticalArray):
        v = bias.v["plane"]
        if array.kind == "ohmic":
            return np.tensordot(v, array.g, axes=1)
        return current(v[:, None, None], array.gap, array.device_params).sum(axis=0)
    layer = bias.selected[0]
    v = bias.v[f"line{array.word_bit_layers(layer)[0]}"]
    if array.kind == "ohmic":
        return v @ array.g[layer]
    return current(v[:, None], array.gap[layer], array.device_params).sum(axis=0)


# -- the circuit both engines read -------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Circuit:
    """Numbered nodes and elements of one biased 3D array.

    - ``res_a``, ``res_b``, ``res_r``: wire resistors (ohm; 0 means the two nodes are one).
    - ``cell_a``, ``cell_b``: each cell's top (plane / word line) and bottom node, in the order
      of ``array.cells.ravel()``.
    - ``mos_d``, ``mos_s``, ``mos_vg``: select transistors (drain node, source node, gate V).
    - ``term_node``, ``term_v``: held nodes and their voltages; ``term_of[group]`` is an int
      array of the bias group's shape holding each terminal's index, -1 where it floats.
    - ``names``: node names (netlist), only when asked for.
    """

    n_nodes: int
    res_a: np.ndarray
    res_b: np.ndarray
    res_r: np.ndarray
    cell_a: np.ndarray
    cell_b: np.ndarray
    mos_d: np.ndarray
    mos_s: np.ndarray
    mos_vg: np.ndarray
    term_node: np.ndarray
    term_v: np.ndarray
    term_of: dict
    res_names: list | None = None
    names: list | None = None


class _Builder:
    def __init__(self, want_names: bool):
        self.count = 0
        self.names = [] if want_names else None
        self.res = []  # (a array, b array, r array, names or None)
        self.terms = []  # (node, volts)

    def nodes(self, shape, prefix=None, fmt=None):
        size = int(np.prod(shape))
        idx = np.arange(self.count, self.count + size).reshape(shape)
        self.count += size
        if self.names is not None:
            self.names += [fmt(*ix) for ix in np.ndindex(*shape)]
        return idx

    def resistors(self, a, b, r, names=None):
        a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
        self.res.append((a, b, np.full(a.size, float(r)), names))


def circuit(array, bias: StackBias, names: bool = False) -> Circuit:
    """The nodes and elements of ``array`` under ``bias`` (validated); node names when ``names``."""
    bias = check_bias(array, bias)
    build = _Builder(names)
    term_of = {}
    term_list = []

    def terminal(group, index, volts, label):
        node = build.nodes((1,), fmt=lambda *_: label)[0]
        term_list.append((node, volts))
        term_of[group][index] = len(term_list) - 1
        return node

    if isinstance(array, StackedCrossbar):
        L, R, C = array.cells.shape
        line_nodes = []
        for k in range(L + 1):
            # node (i, j) of line layer k: word line i at column j, or bit line j at row i
            nodes = build.nodes((R, C), fmt=lambda i, j, k=k: f"l{k}_{i}_{j}")
            line_nodes.append(nodes)
            group = f"line{k}"
            volts = bias.v[group]
            term_of[group] = np.full(volts.shape, -1, dtype=np.int64)
            r_end = (array.r_row if k % 2 == 0 else array.r_col) + (k + 1) * array.r_via
            if k % 2 == 0:
                seg_names = ([f"l{k}_{i}_{j}" for i in range(R) for j in range(1, C)] if names else None)
                build.resistors(nodes[:, :-1], nodes[:, 1:], array.r_row, seg_names)
                ends = [(i, nodes[i, 0]) for i in range(R)]
            else:
                seg_names = ([f"l{k}_{i}_{j}" for i in range(1, R) for j in range(C)] if names else None)
                build.resistors(nodes[:-1, :], nodes[1:, :], array.r_col, seg_names)
                ends = [(j, nodes[R - 1, j]) for j in range(C)]
            for line, end in ends:
                if not math.isnan(volts[line]):
                    t = terminal(group, line, float(volts[line]), f"t{k}_{line}")
                    build.resistors([t], [end], r_end, [f"e{k}_{line}"] if names else None)
        cell_a = np.empty((L, R, C), dtype=np.int64)
        cell_b = np.empty((L, R, C), dtype=np.int64)
        for layer in range(L):
            word, bit = array.word_bit_layers(layer)
            cell_a[layer], cell_b[layer] = line_nodes[word], line_nodes[bit]
        mos = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    else:
        L, P, Q = array.cells.shape
        planes = build.nodes((L, P, Q), fmt=lambda l, i, j: f"p{l}_{i}_{j}")
        pillars = build.nodes((L, P, Q), fmt=lambda l, i, j: f"q{l}_{i}_{j}")
        rp = array.r_plane
        if names:
            h = [f"ph{l}_{i}_{j}" for l in range(L) for i in range(P) for j in range(1, Q)]
            v = [f"pv{l}_{i}_{j}" for l in range(L) for i in range(1, P) for j in range(Q)]
            s = [f"qs{l}_{i}_{j}" for l in range(1, L) for i in range(P) for j in range(Q)]
        else:
            h = v = s = None
        build.resistors(planes[:, :, :-1], planes[:, :, 1:], rp, h)
        build.resistors(planes[:, :-1, :], planes[:, 1:, :], rp, v)
        build.resistors(pillars[:-1], pillars[1:], array.r_pillar, s)
        term_of["plane"] = np.full(L, -1, dtype=np.int64)
        for l in range(L):
            if not math.isnan(bias.v["plane"][l]):
                t = terminal("plane", l, float(bias.v["plane"][l]), f"tp{l}")
                build.resistors(np.full(P, t), planes[l, :, 0], rp, [f"pc{l}_{i}" for i in range(P)] if names else None)
        term_of["pillar"] = np.full((P, Q), -1, dtype=np.int64)
        mos_d, mos_s, mos_vg = [], [], []
        gates = bias.v_gate if bias.v_gate is not None else array.v_gate
        for i in range(P):
            for j in range(Q):
                volts = bias.v["pillar"][i, j]
                if math.isnan(volts):
                    continue
                t = terminal("pillar", (i, j), float(volts), f"tq{i}_{j}")
                if array.kind == "1t1r":
                    foot = build.nodes((1,), fmt=lambda *_: f"f{i}_{j}")[0]
                    mos_d.append(foot)
                    mos_s.append(t)
                    mos_vg.append(float(gates[i, j]))
                else:
                    foot = t
                build.resistors([pillars[0, i, j]], [foot], array.r_pillar, [f"qf{i}_{j}"] if names else None)
        mos = (np.array(mos_d, dtype=np.int64), np.array(mos_s, dtype=np.int64), np.array(mos_vg, dtype=float))
        cell_a, cell_b = planes, pillars
    a = np.concatenate([x[0] for x in build.res]) if build.res else np.zeros(0, np.int64)
    b = np.concatenate([x[1] for x in build.res]) if build.res else np.zeros(0, np.int64)
    r = np.concatenate([x[2] for x in build.res]) if build.res else np.zeros(0)
    res_names = [n for x in build.res for n in x[3]] if names else None
    term_node = np.array([t[0] for t in term_list], dtype=np.int64)
    term_v = np.array([t[1] for t in term_list], dtype=float)
    return Circuit(build.count, a, b, r, cell_a.ravel(), cell_b.ravel(), *mos, term_node, term_v, term_of,
                   res_names, build.names)


# -- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackResult:
    """Solved 3D array (SI units).

    - ``i_term``: {group: currents} into each held terminal from the array (A, positive into
      the terminal, 0 where the line floats); a driven word line or plane reports minus its
      drive current, a sensed bit line or pillar the current it collects.
    - ``i_cell``: per-cell current from top (word line / plane) to bottom node (A), the
      array's cell shape.  ``v_cell``: the voltage across each cell (V).
    - ``v_node``: every node voltage (V), numbered as :func:`circuit` numbers them.
    """

    i_term: dict
    i_cell: np.ndarray
    v_cell: np.ndarray
    v_node: np.ndarray
    engine: str = ""
    info: dict | None = None

    def sensed(self, array, bias: StackBias) -> np.ndarray:
        """The output of an MVM: the bit-line currents of the read layer (stack) or the pillar currents."""
        if isinstance(array, VerticalArray):
            return self.i_term["pillar"]
        return self.i_term[f"line{array.word_bit_layers(bias.selected[0])[1]}"]

    def read_current(self, array, bias: StackBias) -> float:
        """The current sensed in a single-cell read: into the selected bit line or pillar."""
        layer, row, col = bias.selected
        if isinstance(array, VerticalArray):
            return float(self.i_term["pillar"][row, col])
        return float(self.i_term[f"line{array.word_bit_layers(layer)[1]}"][col])


def terminal_currents(ckt: Circuit, i_terminal: np.ndarray) -> dict:
    """Spread per-terminal currents (A) into the bias groups' shapes (0 where floating)."""
    out = {}
    for group, index in ckt.term_of.items():
        values = np.where(index >= 0, i_terminal[np.maximum(index, 0)] if i_terminal.size else 0.0, 0.0)
        out[group] = values
    return out


# -- the bulk-RRAM preset -----------------------------------------------------------------------
#: Read conductance range of the bulk-RRAM preset (S at 0.2 V): 1 MOhm to 10 MOhm.
BULK_G_RANGE = (1e-7, 1e-6)
#: Compact-model parameters for the bulk preset: the published Stanford-PKU set with a wider gap
#: window (gap_max 3 nm), so the 10 MOhm state lies inside the model's gap range.
BULK_PARAMS = RRAMParams(gap_max=3.0e-9)
BULK_RRAM64 = DevicePreset(
    "bulk64", tuple(np.linspace(BULK_G_RANGE[0], BULK_G_RANGE[1], 64)), 0.2, BULK_PARAMS, Variability(),
    source=("64 levels per cell, eight stacked selector-free layers, 40 nm cells: UCSD's bulk RRAM (Kuzum's "
            "group, as reported in \"RRAM hasn't delivered yet, but stacked memory is being pitched to run "
            "neural networks in place\"). The report says the cells work in the megaohm range without a "
            "number; memsim assumes 1-10 MOhm (0.1-1 uS at a 0.2 V read): a decade of window, as filamentary "
            "cells have, shifted to the megaohm range, where a cell current of 20-200 nA lets eight layers "
            "share wires with little IR drop."))
