"""3D arrays + bias -> ngspice netlist text, and the ngspice run that reads the answer back.

Pure text generation over :func:`memsim.circuit.stacked.circuit`: the same numbered circuit the sparse
solver assembles.  Node names: ``l{k}_{i}_{j}`` (stack, line layer k, node (i, j)),
``p{l}_{i}_{j}`` / ``q{l}_{i}_{j}`` (vertical: plane l and pillar (i, j) at plane l),
``f{i}_{j}`` (1T1R pillar foot); held terminals ``t{k}_{line}``, ``tp{l}``, ``tq{i}_{j}``, each
held by the 0-ohm source ``v`` + its name, whose branch current is the current into the
terminal.  Header, options, the RRAM subcircuit, the transistor card, 0-ohm segments and
every number come from :mod:`memsim.circuit.netlist` and :func:`memsim.units.fmt`.
"""
from __future__ import annotations

import time

import numpy as np

from .. import units
from ..devices.rram import current
from ..errors import ResourceLimitError, SpiceError
from . import netlist
from .bias import SCHEMES
from .spice import DEFAULT_TIMEOUT, _run, max_cells
from .stacked import StackBias, StackedCrossbar, StackResult, circuit, terminal_currents


def _title(array, bias) -> str:
    shape = "x".join(str(n) for n in array.cells.shape)
    topology = "stacked cross-point" if isinstance(array, StackedCrossbar) else "vertical RRAM"
    # Only memsim's own strings and integers reach the title line.
    scheme = units.choice(bias.scheme, SCHEMES, "scheme") if isinstance(bias.scheme, str) and bias.scheme in SCHEMES \
        else "bias"
    selected = bias.selected if isinstance(bias.selected, tuple) else ()
    at = ",".join(str(int.__index__(x)) for x in selected if type(x) is int)
    return f"{array.kind} {topology} {shape} {scheme}" + (f" at ({at})" if at else "")


def bias_op(array, bias: StackBias) -> str:
    """Netlist of the DC operating point of ``array`` (StackedCrossbar or VerticalArray) under ``bias``."""
    ckt = circuit(array, bias, names=True)
    names = ckt.names
    lines = netlist._header(array, _title(array, bias), netlist.OP_OPTIONS, transient=False)
    lines.append("* held terminals")
    lines += [f"v{names[n]} {names[n]} 0 {units.fmt(v)}" for n, v in zip(ckt.term_node, ckt.term_v)]
    lines.append("* wires, vias, planes and pillar segments")
    parent = {}

    def root(node):
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    for label, a, b, r in zip(ckt.res_names, ckt.res_a, ckt.res_b, ckt.res_r):
        if r == 0:
            # 0-ohm segments are 0 V sources; one that closes a loop of them (a 0-ohm plane) would
            # make the matrix singular and carries nothing the others do not, so it is left out.
            ra, rb = root(int(a)), root(int(b))
            if ra == rb:
                continue
            parent[ra] = rb
        lines.append(netlist._segment(label, names[a], names[b], units.fmt(r)))
    lines.append("* cells (top electrode first)")
    shape = array.cells.shape
    flat = array.cells.ravel()
    for k, (a, b) in enumerate(zip(ckt.cell_a, ckt.cell_b)):
        label = "_".join(str(int(x)) for x in np.unravel_index(k, shape))
        if array.kind == "ohmic":
            if flat[k] > 0:  # an open cell is absent
                lines.append(f"rx{label} {names[a]} {names[b]} {units.fmt(1.0 / flat[k])}")
        else:
            lines.append(f"xd{label} {names[a]} {names[b]} rram_dc gap={units.fmt(flat[k])}")
    if ckt.mos_d.size:
        t = array.transistor
        size = f"w={units.fmt(t.w)} l={units.fmt(t.l)}"
        model = units.check_name(t.model_name, "transistor model name")
        lines.append("* pillar select transistors (bulk tied to source) and their gates")
        for d, s, vg in zip(ckt.mos_d, ckt.mos_s, ckt.mos_vg):
            label = names[d][1:]
            lines.append(f"vg{label} gl{label} 0 {units.fmt(vg)}")
            lines.append(f"m{label} {names[d]} gl{label} {names[s]} {names[s]} {model} {size}")
    lines += [".op", ".print op all", ".end", ""]
    return "\n".join(lines)


def simulate(array, bias: StackBias, *, backend: str = "subprocess", timeout: float = DEFAULT_TIMEOUT,
             force: bool = False, linear_solver: str = "auto") -> StackResult:
    """Solve ``array`` under ``bias`` with ngspice; the :class:`~memsim.circuit.stacked.StackResult` the
    sparse solver returns.  Arrays above memsim's ngspice size limit (in cells, all layers
    together) are refused unless ``force``.  ``linear_solver`` as in
    :func:`memsim.circuit.spice.run_netlist` (KLU where the engine has it)."""
    cells = array.cells.size
    if not force and cells > max_cells():
        raise ResourceLimitError(
            f"ngspice on a {array.cells.shape} array ({cells} cells) is above memsim's limit of {max_cells()} "
            "cells per run; use memsim.solver.stacked.solve, pass force=True or set MEMSIM_SPICE_MAX_CELLS")
    ckt = circuit(array, bias, names=True)
    t_start = time.perf_counter()
    vectors, used = _run(bias_op(array, bias), backend, timeout, linear_solver)
    try:
        v_node = np.array([vectors[f"v({name})"][0] for name in ckt.names])
        i_terminal = np.array([vectors[f"i(v{ckt.names[n]})"][0] for n in ckt.term_node])
    except KeyError as err:
        raise SpiceError(f"ngspice results lack the vector {err.args[0]}; the rawfile does not match the netlist") from None
    v_cell = (v_node[ckt.cell_a] - v_node[ckt.cell_b]).reshape(array.cells.shape)
    if array.kind == "ohmic":
        i_cell = array.g * v_cell
    else:
        i_cell = current(v_cell, array.gap, array.device_params)
    return StackResult(terminal_currents(ckt, i_terminal), i_cell, v_cell, v_node, "ngspice",
                       {"wall_s": time.perf_counter() - t_start, "linear_solver": used})
