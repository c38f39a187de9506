"""Run ngspice on memsim netlists and read the solved circuit back.

Backends (chosen explicitly, never a hidden global simulator):

- ``"subprocess"`` (default): ``ngspice -b -r out.raw netlist.cir`` in a private temporary
  directory, with a timeout; the binary rawfile is parsed by numpy.  The directory is removed
  whatever happens.
- ``"pyspice"``: PySpice's shared-library interface to ``libngspice.so`` (needs Debian's
  ``libngspice0-dev``).  What does not work there: a timeout (the library runs in-process
  and cannot be interrupted, so ``timeout`` is ignored), and transient programming runs
  (only ``.op`` netlists are supported through it).  PySpice 1.5 warns "Unsupported Ngspice
  version" for ngspice 39 and then runs correctly; memsim silences that warning.

Both return the same :class:`~memsim.circuit.result.SolveResult` the fast solver returns.  Errors
(binary missing, timeout, non-convergence, unreadable output) raise :class:`SpiceError`
quoting ngspice's own message.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import units
from ..devices.rram import current as rram_current
from ..errors import ResourceLimitError, SpiceError
from . import netlist
from .array import Crossbar, check_inputs, check_voltage
from .bias import Bias, mvm_bias, read_bias
from .result import SolveResult

BACKENDS = ("subprocess", "pyspice")
DEFAULT_TIMEOUT = 600.0
#: Longest timeout accepted (s): a week.
MAX_TIMEOUT = 7 * 86400.0
#: Largest array (in cells) simulated without ``force=True``; override with $MEMSIM_SPICE_MAX_CELLS.
DEFAULT_MAX_CELLS = 128 * 128
# Lines that mean the answer cannot be trusted, warnings included: ngspice writes a rawfile and
# exits 0 even after "Warning: source stepping failed" on a singular circuit.  (A failed gmin
# step alone is not fatal: source stepping may still converge.)
_FATAL = re.compile(r"\berror\b(?!\s*=)|singular matrix|iteration limit|timestep too small|aborted|"
                    r"no convergence|source stepping failed|cannot|unknown subckt|unknown model", re.IGNORECASE)


def ngspice_binary() -> str:
    """Path of the ngspice executable (``$MEMSIM_NGSPICE`` or ``ngspice`` on PATH)."""
    path = shutil.which(os.environ.get("MEMSIM_NGSPICE", "ngspice"))
    if path is None:
        raise SpiceError("ngspice was not found on PATH; install it with "
                         "`apt-get install -y ngspice libngspice0 libngspice0-dev` (or run "
                         "scripts/install.sh), or set MEMSIM_NGSPICE to the executable")
    return path


# -- rawfile ---------------------------------------------------------------------------------
def parse_rawfile(data: bytes) -> dict[str, np.ndarray]:
    """Parse the first plot of an ngspice binary rawfile: {vector name: values (points,)}."""
    marker = data.find(b"Binary:\n")
    if marker < 0:
        raise SpiceError("ngspice rawfile is truncated or not binary (no 'Binary:' section)")
    header = data[:marker].decode("ascii", errors="replace").splitlines()
    fields = {}
    names = []
    in_vars = False
    for line in header:
        if in_vars:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit():
                names.append(parts[1].lower())
                continue
            in_vars = False
        if line.startswith("Variables:"):
            in_vars = True
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
    try:
        n_vars = int(fields["no. variables"])
        n_points = int(fields["no. points"])
    except (KeyError, ValueError):
        raise SpiceError("ngspice rawfile header lacks its variable or point count") from None
    if "complex" in fields.get("flags", ""):
        raise SpiceError("complex rawfiles (AC analyses) are not supported")
    if len(names) != n_vars:
        raise SpiceError(f"ngspice rawfile lists {len(names)} variables, header says {n_vars}")
    body = data[marker + len(b"Binary:\n"):]
    needed = n_vars * n_points * 8
    if len(body) < needed:
        raise SpiceError(f"ngspice rawfile is truncated: {len(body)} bytes of data, {needed} expected")
    values = np.frombuffer(body[:needed], dtype="<f8").reshape(n_points, n_vars)
    return {name: values[:, k].copy() for k, name in enumerate(names)}


def _check_output(output: str) -> None:
    lowered = output.lower()
    bad = list(dict.fromkeys(line.strip() for line in output.splitlines() if _FATAL.search(line)))
    if bad:
        hint = ""
        if any(k in lowered for k in ("convergence", "iteration limit", "timestep too small", "gmin", "singular")):
            hint = (" The circuit did not converge (or is singular: a floating line with no path to a "
                    "source?). Check the bias and cell values, or try smaller steps.")
        raise SpiceError("ngspice reported: " + " | ".join(bad[:5]) + hint, output)


# -- backends -------------------------------------------------------------------------------
def run_netlist(text: str, *, backend: str = "subprocess", timeout: float = DEFAULT_TIMEOUT) -> dict[str, np.ndarray]:
    """Run one netlist and return its vectors ({name: values}); names as ngspice writes them,
    lower case (``v(r0_0)``, ``i(vs0)``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "pyspice":
        return _run_pyspice(text)
    try:
        timeout = units.real(timeout, "timeout")
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], got {units.shown(timeout)}")
    binary = ngspice_binary()
    with tempfile.TemporaryDirectory(prefix=_work_prefix()) as work:
        cir = Path(work) / "circuit.cir"
        raw = Path(work) / "out.raw"
        try:
            cir.write_text(text, encoding="ascii")
        except OSError as err:
            raise SpiceError(f"cannot write the netlist to the temporary directory {work}: {err}; "
                             "free some space or set TMPDIR to another disk") from None
        try:
            # A session of its own, so a timeout kills ngspice and anything it started.
            proc = subprocess.Popen([binary, "-b", "-r", str(raw), str(cir)], cwd=work, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
        except OSError as err:
            raise SpiceError(f"ngspice could not be started ({binary}): {err}") from None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            raise SpiceError(f"ngspice did not finish within the {timeout:g} s timeout; pass a larger "
                             "timeout or simulate a smaller array (memsim.solve handles large ones)") from None
        except BaseException:  # KeyboardInterrupt: stop ngspice too, then let the directory go
            _kill_session(proc)
            raise
        output = stdout + stderr
        if proc.returncode < 0:
            raise SpiceError(f"ngspice was killed by signal {-proc.returncode}", output)
        _check_output(output)
        if proc.returncode != 0:
            raise SpiceError(f"ngspice exited with status {proc.returncode}: "
                             + " | ".join(output.strip().splitlines()[-5:]), output)
        if not raw.exists():
            raise SpiceError("ngspice wrote no results: " + " | ".join(output.strip().splitlines()[-5:]), output)
        return _check_finite(parse_rawfile(raw.read_bytes()), output)


def _work_prefix() -> str:
    # The process id in the name lets a process that must exit at once find its own folders.
    return f"memsim-ngspice-{os.getpid()}-"


def remove_work_folders() -> None:
    """Remove this process's ngspice work folders. A run's folder goes when the run ends; this is
    for a process about to exit without unwinding (a study worker told to stop), where an
    interrupt may have landed between the folder's creation and its removal."""
    for folder in Path(tempfile.gettempdir()).glob(_work_prefix() + "*"):
        shutil.rmtree(folder, ignore_errors=True)


def _check_finite(vectors: dict[str, np.ndarray], output: str) -> dict[str, np.ndarray]:
    """ngspice can exit 0 with NaN or inf in its results (an overflowing B-source expression):
    such a result is an error, never an answer."""
    bad = [name for name, values in vectors.items() if not np.all(np.isfinite(values))]
    if bad:
        raise SpiceError(f"ngspice returned non-finite values (NaN or inf) in {len(bad)} vector(s), e.g. "
                         f"{', '.join(bad[:3])}; the circuit is outside what the model evaluates", output)
    return vectors


def _kill_session(proc) -> None:
    """Kill ngspice's whole session; it may have exited on its own a moment ago."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


_PYSPICE = None


def _run_pyspice(text: str) -> dict[str, np.ndarray]:
    global _PYSPICE
    if "\n.tran" in text:
        raise SpiceError("the pyspice backend runs .op netlists only; use backend='subprocess' for transients")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
            if _PYSPICE is None:
                _PYSPICE = NgSpiceShared.new_instance()
    except Exception as err:  # PySpice raises several types when libngspice.so is missing
        raise SpiceError(f"the PySpice backend could not load libngspice ({err}); install "
                         "libngspice0-dev or use backend='subprocess'") from None
    ng = _PYSPICE
    ng.destroy()
    ng.clear_output()
    try:
        ng.load_circuit(text)
        ng.run()
    except Exception as err:
        raise SpiceError(f"ngspice (shared library) failed: {err}", "\n".join(ng.stderr)) from None
    output = "\n".join(ng.stdout + ng.stderr)
    _check_output(output)
    plot = ng.plot(None, ng.last_plot)
    result = {}
    for name, vector in plot.items():
        key = name.lower()
        key = f"i({key[:-7]})" if key.endswith("#branch") else f"v({key})"
        result[key] = np.atleast_1d(np.real(np.asarray(vector._data, dtype=float)))
    return _check_finite(result, output)


# -- resource guard ----------------------------------------------------------------------------
def estimate_cost(xb: Crossbar) -> tuple[float, float]:
    """Rough ngspice cost of one .op on ``xb``: (seconds, bytes).

    Fitted to Debian's ngspice 39 (no KLU) on this project's 2-core machines: about 0.2 s and
    25 MB at 32x32, 4 s and 60 MB at 64x64 (1T1R); time grows as cells^2.2.
    """
    cells = xb.rows * xb.cols
    return 0.2 * (cells / 1024) ** 2.2, 15e6 + 11e3 * cells


def max_cells() -> int:
    value = os.environ.get("MEMSIM_SPICE_MAX_CELLS", str(DEFAULT_MAX_CELLS))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"MEMSIM_SPICE_MAX_CELLS must be an integer number of cells, got {value!r}") from None


def check_size(xb: Crossbar, force: bool = False) -> None:
    """Refuse (ResourceLimitError) an ngspice run above the size limit unless ``force``."""
    limit = max_cells()
    if force or xb.rows * xb.cols <= limit:
        return
    seconds, nbytes = estimate_cost(xb)
    raise ResourceLimitError(
        f"ngspice on a {xb.rows}x{xb.cols} {xb.kind} array is estimated at {seconds / 60:.0f} min and "
        f"{nbytes / 1e9:.1f} GB per run (Debian's ngspice has no KLU solver); memsim refuses SPICE runs above "
        f"{limit} cells. Use memsim.solve for large arrays, or pass force=True (CLI: --force) or set "
        "MEMSIM_SPICE_MAX_CELLS to run it anyway")


# -- crossbar-level runs --------------------------------------------------------------------
def simulate(xb: Crossbar, v_in, *, cells: bool = False, backend: str = "subprocess",
             timeout: float = DEFAULT_TIMEOUT, force: bool = False) -> SolveResult:
    """Solve the MVM read of ``xb`` with ngspice.

    ``v_in``: (rows,) or (batch, rows) volts (a batch runs one ngspice job per vector).
    Returns a :class:`SolveResult` with ``i_col`` (cols,) or (batch, cols) A, ``v_row`` and
    ``v_col`` (rows, cols) V, and ``i_cell`` (rows, cols) A when ``cells`` is true.  Arrays
    above :data:`DEFAULT_MAX_CELLS` are refused with a cost estimate unless ``force``.
    """
    v_in = check_inputs(xb, v_in)
    check_size(xb, force)
    biases = [mvm_bias(v, xb.cols) for v in np.atleast_2d(v_in)]
    return _run_biases(xb, biases, cells, backend, timeout, batched=v_in.ndim == 2)


def simulate_read(xb: Crossbar, row: int, col: int, v_read: float = 0.2, scheme: str = "v/2", *,
                  cells: bool = False, backend: str = "subprocess", timeout: float = DEFAULT_TIMEOUT,
                  force: bool = False) -> SolveResult:
    """Single-cell read of (``row``, ``col``) with a bias scheme (see :mod:`memsim.circuit.bias`).

    ``i_col[col]`` is the sensed current; driven unselected columns report the current into
    their driver, floating ones 0 A.
    """
    bias = read_bias(xb.rows, xb.cols, row, col, v_read, scheme)
    check_voltage(xb, v_read)
    return simulate_bias(xb, bias, cells=cells,
                         backend=backend, timeout=timeout, force=force)


def simulate_bias(xb: Crossbar, bias: Bias, *, cells: bool = False, backend: str = "subprocess",
                  timeout: float = DEFAULT_TIMEOUT, force: bool = False) -> SolveResult:
    """DC operating point of ``xb`` under any :class:`~memsim.circuit.bias.Bias`."""
    check_size(xb, force)
    return _run_biases(xb, [bias], cells, backend, timeout, batched=False)


def _run_biases(xb, biases, cells, backend, timeout, batched) -> SolveResult:
    rows, cols = xb.shape
    row_names = [f"v(r{i}_{j})" for i in range(rows) for j in range(cols)]
    col_names = [f"v(c{i}_{j})" for i in range(rows) for j in range(cols)]
    out = {"i_col": [], "v_row": [], "v_col": [], "i_cell": []}
    t_start = time.perf_counter()
    for bias in biases:
        vectors = run_netlist(netlist.bias_op(xb, bias), backend=backend, timeout=timeout)
        try:
            v_row = np.array([vectors[n][0] for n in row_names]).reshape(rows, cols)
            v_col = np.array([vectors[n][0] for n in col_names]).reshape(rows, cols)
            i_col = np.array([vectors[f"i(vs{j})"][0] if not math.isnan(bias.v_col[j]) else 0.0
                              for j in range(cols)])
            v_mid = (np.array([vectors[f"v(d{i}_{j})"][0] for i in range(rows) for j in range(cols)])
                     .reshape(rows, cols) if (cells and xb.kind == "1t1r") else None)
        except KeyError as err:
            raise SpiceError(f"ngspice results lack the vector {err.args[0]}; the rawfile does not match "
                             "the netlist") from None
        out["i_col"].append(i_col)
        out["v_row"].append(v_row)
        out["v_col"].append(v_col)
        if cells:
            out["i_cell"].append(_cell_currents(xb, v_row, v_col, v_mid))
    pick = (lambda k: np.array(out[k])) if batched else (lambda k: out[k][0])
    return SolveResult(pick("i_col"), pick("v_row"), pick("v_col"), pick("i_cell") if cells else None,
                       engine="ngspice", info={"backend": backend, "runs": len(biases),
                                               "seconds": time.perf_counter() - t_start})


def _cell_currents(xb: Crossbar, v_row, v_col, v_mid) -> np.ndarray:
    """Cell currents from ngspice's node voltages through the same element equations."""
    if xb.kind == "ohmic":
        return xb.g * (v_row - v_col)
    if xb.kind == "device":
        return rram_current(v_row - v_col, xb.gap, xb.device_params)
    return rram_current(v_row - v_mid, xb.gap, xb.device_params)


# -- programming transients -----------------------------------------------------------------
@dataclass(frozen=True)
class ProgramResult:
    """A programming transient: ``time`` (T,) s, ``gap`` (T, R, C) m, ``gap_final`` (R, C) m,
    ``i_selected`` (T,) A through the selected row driver (positive out of the driver)."""

    time: np.ndarray
    gap: np.ndarray
    i_selected: np.ndarray
    selected: tuple[int, int]

    @property
    def gap_final(self) -> np.ndarray:
        return self.gap[-1]

    @property
    def gap_initial(self) -> np.ndarray:
        return self.gap[0]


def simulate_program(xb: Crossbar, row: int, col: int, v_pulse: float, t_pulse: float = 50e-9, *,
                     scheme: str = "v/2", timeout: float = DEFAULT_TIMEOUT, force: bool = False,
                     **pulse_options) -> ProgramResult:
    """Run :func:`memsim.circuit.netlist.program` with ngspice and return every cell's gap over time."""
    check_size(xb, force)
    text = netlist.program(xb, row, col, v_pulse, t_pulse, scheme=scheme, **pulse_options)
    vectors = run_netlist(text, backend="subprocess", timeout=timeout)
    rows, cols = xb.shape
    try:
        t = vectors["time"]
        gap = np.stack([vectors[f"v(x{i}_{j})"] for i in range(rows) for j in range(cols)], axis=1)
        i_sel = -vectors[f"i(vin{row})"]
    except KeyError as err:
        raise SpiceError(f"ngspice transient results lack the vector {err.args[0]}") from None
    return ProgramResult(t, gap.reshape(len(t), rows, cols) * 1e-9, i_sel, (row, col))
