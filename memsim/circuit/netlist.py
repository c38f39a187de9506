"""Crossbar + bias -> ngspice netlist text.  Pure functions: same inputs, same text.

Node names follow docs/design.md: row nodes ``r{i}_{j}``, column nodes ``c{i}_{j}``, the 1T1R
internal node ``d{i}_{j}``; row drivers ``vin{i}`` drive ``in{i}``, column ends sit on
``s{j}`` held by ``vs{j}`` (its branch current is the column current), gate lines ``gl{i}``
are held by ``vg{i}``.  A wire segment of 0 ohm is written as a 0 V source, because ngspice
silently turns a 0-ohm resistor into 1 milliohm.

Every number passes :func:`memsim.units.fmt` and every name is fixed by memsim or checked by
:func:`memsim.units.check_name`, so no user input can add a statement to the netlist.
"""
from __future__ import annotations

import math

from .. import units
from ..devices.rram import RRAMParams, spice_subckt
from .array import Crossbar, check_inputs, check_voltage
from .bias import Bias, mvm_bias, read_bias

#: The second line of every netlist: how to run it by hand.
RUN_NOTE = ("* run: ngspice -b FILE (prints the solution through .print), or ngspice -b -r out.raw FILE "
            "(binary rawfile, as memsim reads it)")
#: Options for .op runs: tight tolerances so ngspice's answer can serve as a reference.
OP_OPTIONS = ".options reltol=1e-9 abstol=1e-16 vntol=1e-12 itl1=500"
#: Accepted pulse timing (s): from a picosecond to a second of simulated time.
TIME_RANGE = (1e-12, 1.0)
#: Options for transient programming runs (time-step control on the gap node).
TRAN_OPTIONS = ".options reltol=1e-6 abstol=1e-15 vntol=1e-9 method=gear itl4=100"


def mvm(xb: Crossbar, v_in) -> str:
    """Netlist of an MVM read (.op): every row driven at ``v_in`` (rows,) V, every column sensed at 0 V."""
    v_in = check_inputs(xb, v_in)
    if v_in.ndim != 1:
        raise ValueError(f"netlist.mvm takes one input vector of shape ({xb.rows},); got {v_in.shape} "
                         "(memsim.simulate loops over a batch)")
    return bias_op(xb, mvm_bias(v_in, xb.cols), title=f"{xb.kind} {xb.rows}x{xb.cols} MVM read")


def read(xb: Crossbar, row: int, col: int, v_read: float = 0.2, scheme: str = "v/2") -> str:
    """Netlist of a single-cell read (.op) of cell (``row``, ``col``) with a bias scheme
    (``"floating"``, ``"v/2"``, ``"v/3"``, ``"grounded"``; see :mod:`memsim.circuit.bias`)."""
    bias = read_bias(xb.rows, xb.cols, row, col, v_read, scheme)
    check_voltage(xb, v_read)
    (row, col), scheme = bias.selected, bias.scheme  # builtin values, checked
    return bias_op(xb, bias, title=f"{xb.kind} {xb.rows}x{xb.cols} read of cell ({row}, {col}), {scheme}")


def bias_op(xb: Crossbar, bias: Bias, title: str = "") -> str:
    """Netlist of a DC operating point for any :class:`~memsim.circuit.bias.Bias`."""
    lines = _header(xb, title or f"{xb.kind} {xb.rows}x{xb.cols}", OP_OPTIONS, transient=False)
    lines += _drivers(xb, bias.v_row, bias.v_col, _dc_source)
    lines += _wires(xb, bias)
    lines += _cells(xb, transient=False)
    lines += [".op", ".print op all", ".end", ""]
    return "\n".join(lines)


def program(xb: Crossbar, row: int, col: int, v_pulse: float, t_pulse: float = 50e-9, *,
            scheme: str = "v/2", t_edge: float = 1e-9, t_settle: float = 5e-9,
            max_step: float | None = None) -> str:
    """Netlist of a programming transient: one pulse on cell (``row``, ``col``).

    ``v_pulse`` > 0 is a SET pulse (gap shrinks), < 0 a RESET pulse.  The selected row steps
    to ``v_pulse``, the selected column stays at 0 V, and the other lines follow ``scheme``
    (default V/2, so half-selected cells see ``v_pulse``/2 and their write disturb is
    visible).  Every cell uses the transient RRAM subcircuit, whose internal node ``x{i}_{j}``
    carries the gap in nm; run it with ``.tran ... uic`` (written here).  Times in s.
    """
    bias = read_bias(xb.rows, xb.cols, row, col, v_pulse, scheme)
    check_voltage(xb, v_pulse)
    if xb.kind == "ohmic":
        raise ValueError("a programming transient needs RRAM cells (kind 'device' or '1t1r'), not ohmic ones")
    (row, col), scheme = bias.selected, bias.scheme  # builtin values, checked
    v_pulse = units.real(v_pulse, "v_pulse")
    times = {}
    for name, value in (("t_pulse", t_pulse), ("t_edge", t_edge), ("t_settle", t_settle), ("max_step", max_step)):
        if name == "max_step" and value is None:
            continue
        try:
            times[name] = units.real(value, name)
        except ValueError:
            times[name] = -1.0
        if not TIME_RANGE[0] <= times[name] <= TIME_RANGE[1]:
            raise ValueError(f"{name} must be a time in [{TIME_RANGE[0]:g}, {TIME_RANGE[1]:g}] s, got {units.shown(value)}")
    t_pulse, t_edge, t_settle = times["t_pulse"], times["t_edge"], times["t_settle"]
    t_stop = 2 * t_edge + t_pulse + 2 * t_settle
    step = times.get("max_step", t_stop / 2000)

    def pulse(name, plus, level):
        return (f"{name} {plus} 0 pulse(0 {units.fmt(level)} {units.fmt(t_settle)} {units.fmt(t_edge)} "
                f"{units.fmt(t_edge)} {units.fmt(t_pulse)} {units.fmt(10 * t_stop)})")

    lines = _header(xb, f"{xb.kind} {xb.rows}x{xb.cols} programming pulse of {units.fmt(v_pulse)} V on cell "
                        f"({row}, {col}), {scheme}", TRAN_OPTIONS, transient=True)
    lines += _drivers(xb, bias.v_row, bias.v_col, pulse)
    lines += _wires(xb, bias)
    lines += _cells(xb, transient=True)
    lines += [f".tran {units.fmt(step / 10)} {units.fmt(t_stop)} 0 {units.fmt(step)} uic",
              f".print tran v(x{row}_{col}) i(vin{row})", ".end", ""]
    return "\n".join(lines)


# -- pieces ----------------------------------------------------------------------------------
def _header(xb: Crossbar, title: str, options: str, transient: bool) -> list[str]:
    # gmin only enters through the transistor junctions: set it to the reduced model's g_leak.
    gmin = xb.transistor.g_leak if xb.kind == "1t1r" else 1e-12
    lines = [f"* memsim netlist: {title}", RUN_NOTE, f"{options} gmin={units.fmt(gmin)}"]
    if xb.kind != "ohmic":
        # The built-in model as subcircuits; a Verilog-A device as its compiled OSDI model.
        lines += ([spice_subckt(xb.device_params)] if isinstance(xb.device_params, RRAMParams)
                  else xb.device_params.spice_model())
    if xb.kind == "1t1r":
        lines += ["* access transistor model card: " + units.check_file_name(xb.transistor.card.name, "model card"),
                  xb.transistor.card_text.rstrip("\n")]
    return lines


def _dc_source(name: str, plus: str, level: float) -> str:
    return f"{name} {plus} 0 {units.fmt(level)}"


def _segment(name: str, a: str, b: str, r: str) -> str:
    # ngspice replaces R = 0 by 1 milliohm: an ideal segment is a 0 V source instead.
    return f"v{name} {a} {b} 0" if r == "0.0" else f"r{name} {a} {b} {r}"


def _drivers(xb: Crossbar, v_row, v_col, source) -> list[str]:
    lines = ["* row drivers (left ends) and column ends (bottom)"]
    lines += [source(f"vin{i}", f"in{i}", v) for i, v in enumerate(v_row) if not math.isnan(v)]
    lines += [source(f"vs{j}", f"s{j}", v) for j, v in enumerate(v_col) if not math.isnan(v)]
    if xb.kind == "1t1r":
        lines += [f"vg{i} gl{i} 0 {units.fmt(v)}" for i, v in enumerate(xb.v_gate)]
    return lines


def _wires(xb: Crossbar, bias: Bias) -> list[str]:
    rows, cols = xb.shape
    rr, rc = units.fmt(xb.r_row), units.fmt(xb.r_col)
    lines = ["* word lines (rows)"]
    for i in range(rows):
        if not math.isnan(bias.v_row[i]):
            lines.append(_segment(f"r{i}_0", f"in{i}", f"r{i}_0", rr))
        lines += [_segment(f"r{i}_{j}", f"r{i}_{j - 1}", f"r{i}_{j}", rr) for j in range(1, cols)]
    lines.append("* bit lines (columns)")
    for j in range(cols):
        lines += [_segment(f"c{i}_{j}", f"c{i - 1}_{j}", f"c{i}_{j}", rc) for i in range(1, rows)]
        if not math.isnan(bias.v_col[j]):
            lines.append(_segment(f"cb{j}", f"c{rows - 1}_{j}", f"s{j}", rc))
    return lines


def _cells(xb: Crossbar, transient: bool) -> list[str]:
    rows, cols = xb.shape
    lines = ["* cells"]
    if xb.kind == "ohmic":
        g = xb.g
        for i in range(rows):
            # An open cell (g = 0) is simply absent.
            lines += [f"rx{i}_{j} r{i}_{j} c{i}_{j} {units.fmt(1.0 / g[i, j])}"
                      for j in range(cols) if g[i, j] > 0]
        return lines
    gap = xb.gap
    if not isinstance(xb.device_params, RRAMParams):
        return lines + _osdi_cells(xb, transient)
    if xb.kind == "device":
        if transient:
            for i in range(rows):
                lines += [f"xd{i}_{j} r{i}_{j} c{i}_{j} x{i}_{j} rram_tran gap={units.fmt(gap[i, j])}"
                          for j in range(cols)]
        else:
            for i in range(rows):
                lines += [f"xd{i}_{j} r{i}_{j} c{i}_{j} rram_dc gap={units.fmt(gap[i, j])}"
                          for j in range(cols)]
        return lines
    t = xb.transistor
    size = f"w={units.fmt(t.w)} l={units.fmt(t.l)}"
    model = units.check_name(t.model_name, "transistor model name")
    for i in range(rows):
        for j in range(cols):
            if transient:
                lines.append(f"xd{i}_{j} r{i}_{j} d{i}_{j} x{i}_{j} rram_tran gap={units.fmt(gap[i, j])}")
            else:
                lines.append(f"xd{i}_{j} r{i}_{j} d{i}_{j} rram_dc gap={units.fmt(gap[i, j])}")
            lines.append(f"m{i}_{j} d{i}_{j} gl{i} c{i}_{j} c{i}_{j} {model} {size}")
    return lines


def _osdi_cells(xb: Crossbar, transient: bool) -> list[str]:
    """Cells of a Verilog-A device: an OSDI instance ``n{i}_{j}`` whose state node ``x{i}_{j}``
    is held at the cell's state by a source (a read: the state does not move) or starts there
    (a transient, ``.ic`` with ``uic``)."""
    rows, cols = xb.shape
    model = xb.device_params.model_name
    low = "d" if xb.kind == "1t1r" else "c"
    lines = []
    for i in range(rows):
        for j in range(cols):
            lines.append(f"nd{i}_{j} r{i}_{j} {low}{i}_{j} x{i}_{j} {model}")
            state = units.fmt(xb.gap[i, j])
            lines.append(f".ic v(x{i}_{j})={state}" if transient else f"vx{i}_{j} x{i}_{j} 0 {state}")
            if xb.kind == "1t1r":
                t = xb.transistor
                lines.append(f"m{i}_{j} d{i}_{j} gl{i} c{i}_{j} c{i}_{j} "
                             f"{units.check_name(t.model_name, 'transistor model name')} "
                             f"w={units.fmt(t.w)} l={units.fmt(t.l)}")
    return lines
