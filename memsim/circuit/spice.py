"""Run ngspice on memsim netlists and read the solved circuit back.

Backends (chosen explicitly, never a hidden global simulator):

- ``"subprocess"`` (default): ``ngspice -b -r out.raw netlist.cir`` in a private temporary
  directory, with a timeout; the binary rawfile is parsed by numpy.  The directory is removed
  whatever happens.
- ``"pyspice"``: PySpice's shared-library interface to ``libngspice.so`` (needs Debian's
  ``libngspice0-dev``).  What does not work there: a timeout (the library runs in-process
  and cannot be interrupted, so ``timeout`` is ignored), and transient programming runs
  (only ``.op`` netlists are supported through it).  PySpice 1.5 warns "Unsupported Ngspice
  version" for ngspice 39 (logs it for 46) and then runs correctly; memsim silences that.

Both return the same :class:`~memsim.circuit.result.SolveResult` the fast solver returns.  Errors
(binary missing, timeout, non-convergence, unreadable output) raise :class:`SpiceError`
quoting ngspice's own message.

The engine's abilities (version, the KLU linear solver, OSDI for compiled Verilog-A models) are
probed once per process and backend by :func:`engine`.  Every run asks for KLU where the engine
has it: the runner adds ``.options klu`` under the netlist's title line, so the netlist text
itself (pure, pinned by golden files) stays valid on any ngspice.  Without KLU, ngspice uses its
Sparse 1.3 solver: the same answers, far slower on large arrays (measured in docs/design.md,
"The ngspice engine").
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
from ..devices.rram import RRAMParams
from ..errors import ResourceLimitError, SpiceError
from . import netlist
from .array import Crossbar, check_inputs, check_voltage
from .bias import Bias, mvm_bias, read_bias
from .result import SolveResult

BACKENDS = ("subprocess", "pyspice")
#: ngspice's sparse linear solvers: "auto" is KLU where the engine has it, else Sparse 1.3.
LINEAR_SOLVERS = ("auto", "klu", "sparse")
DEFAULT_TIMEOUT = 600.0
#: Longest timeout accepted (s): a week.
MAX_TIMEOUT = 7 * 86400.0
#: Largest array (in cells) simulated without ``force=True`` on an engine with KLU (a 256x256
#: 1T1R .op: about 19-33 s and 0.85 GB on ngspice 46) and on one without (Sparse 1.3: minutes at
#: 128x128); override with $MEMSIM_SPICE_MAX_CELLS.
DEFAULT_MAX_CELLS = 256 * 256
DEFAULT_MAX_CELLS_SPARSE = 128 * 128
#: Where an ngspice with KLU and OSDI comes from.
INSTALL_HINT = ("on Debian 12: apt-get install -t bookworm-backports ngspice libngspice0 libngspice0-dev; "
                "Debian 13's own ngspice package has both")
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


# -- engine --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """What the ngspice behind a backend can do (probed by :func:`engine`).

    ``version``: as ngspice reports it (``"46"``, ``"39.3"``; ``""`` if it does not say);
    ``klu``: the KLU linear solver is built in and accepted by ``.options klu``;
    ``osdi``: compiled Verilog-A models load (the ``osdi`` command exists, ngspice >= 39);
    ``location``: the binary's path, or the shared library PySpice loaded.
    """

    backend: str
    version: str
    klu: bool
    osdi: bool
    location: str

    @property
    def major(self) -> int | None:
        """The major version (46 for ``"46"``), None if unknown."""
        match = re.match(r"\d+", self.version)
        return int(match.group()) if match else None

    @property
    def missing(self) -> tuple[str, ...]:
        """The abilities this engine lacks, of ``("KLU", "OSDI")``."""
        return tuple(name for name, there in (("KLU", self.klu), ("OSDI", self.osdi)) if not there)

    @property
    def advice(self) -> str:
        """One line for users: what is missing and how to get it; ``""`` when nothing is."""
        if not self.missing:
            return ""
        what = {"KLU": "KLU (large arrays run on Sparse 1.3, 10-250x slower)",
                "OSDI": "OSDI (compiled Verilog-A models cannot load)"}
        return (f"ngspice {self.version or '(version unknown)'} at {self.location} lacks "
                + " and ".join(what[m] for m in self.missing) + f"; get ngspice >= 43 with both: {INSTALL_HINT}")


#: Output of the probe netlist: a KLU run of one resistor, the version, and the osdi command
#: without arguments (an error of its own where OSDI is built in, "no such command" where not).
_PROBE = ("* memsim engine probe\n.options klu\nv1 1 0 1\nr1 1 0 2\n.control\nversion -s\nosdi\nop\n"
          "print v(1)\n.endc\n.end\n")
_ENGINES: dict[tuple[str, str], Engine] = {}


def engine(backend: str = "subprocess") -> Engine:
    """The ngspice behind ``backend``: version, KLU and OSDI, probed once per process (cached per
    binary; one run of a one-resistor netlist, about 20 ms).  Raises :class:`SpiceError` when
    there is no ngspice or it fails that run.

    >>> memsim.circuit.spice.engine()            # doctest: +SKIP
    Engine(backend='subprocess', version='46', klu=True, osdi=True, location='/usr/bin/ngspice')
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return _engine(backend, 60.0)


def _engine(backend: str, timeout: float) -> Engine:
    location = ngspice_binary() if backend == "subprocess" else "libngspice (PySpice)"
    key = (backend, location)
    if key in _ENGINES:
        return _ENGINES[key]
    output = _probe_subprocess(location, timeout) if backend == "subprocess" else _probe_pyspice()
    found = parse_probe(output, backend, location)
    if found.version:  # an engine that did not say what it is is asked again next time
        _ENGINES[key] = found
    return found


def parse_probe(output: str, backend: str, location: str) -> Engine:
    """The :class:`Engine` that the probe netlist's output describes."""
    version = re.search(r"ngspice-(\d+(?:\.\d+)*)", output)
    version = version.group(1) if version else ""
    klu = re.search(r"using klu as direct linear solver", output, re.IGNORECASE) is not None
    major = int(version.split(".")[0]) if version else 0
    osdi = major >= 39 and re.search(r"osdi: no such command", output, re.IGNORECASE) is None
    return Engine(backend, version, klu, osdi, location)


def _probe_subprocess(binary: str, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix=_work_prefix()) as work:
        cir = Path(work) / "probe.cir"
        cir.write_text(_PROBE, encoding="ascii")
        returncode, output = _batch(
            [binary, "-b", str(cir)], work, timeout,
            f"ngspice ({binary}) did not run a one-resistor netlist within the {timeout:g} s timeout")
    if returncode < 0:
        raise SpiceError(f"ngspice was killed by signal {-returncode} (running a one-resistor netlist)", output)
    return output


def _batch(argv: list, work: str, timeout: float, timeout_message: str) -> tuple[int, str]:
    """Run ngspice in batch mode in ``work``; (exit status, stdout + stderr).  It runs in a
    session of its own, so a timeout (or an interrupt here) kills ngspice and anything it started."""
    try:
        proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as err:
        raise SpiceError(f"ngspice could not be started ({argv[0]}): {err}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        raise SpiceError(timeout_message) from None
    except BaseException:  # KeyboardInterrupt: stop ngspice too, then let the directory go
        _kill_session(proc)
        raise
    return proc.returncode, stdout + stderr


def _probe_pyspice() -> str:
    import logging

    ng = _pyspice_instance()
    ng.destroy()
    ng.clear_output()
    lines = []
    logger = logging.getLogger("PySpice")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # PySpice logs the osdi command's expected error line
    try:
        try:
            lines.append(ng.exec_command("version -s"))
            ng.exec_command("osdi")
        except Exception:  # PySpice raises on the command's error line; the line is in ng.stderr
            pass
        try:
            ng.load_circuit(_PROBE.split(".control")[0] + ".op\n.end\n")
            ng.run()
        except Exception as err:
            raise SpiceError(f"ngspice (shared library) could not run a one-resistor netlist: {err}") from None
    finally:
        logger.setLevel(level)
    output = "\n".join(lines + [ng.stdout, ng.stderr])
    ng.destroy()
    ng.clear_output()
    return output


def _klu_available() -> bool:
    """Whether the subprocess engine has KLU; False where it cannot be probed (no ngspice)."""
    try:
        return engine("subprocess").klu
    except SpiceError:
        return False


def _solver_options(text: str, linear_solver: str, eng: Engine) -> tuple[str, str]:
    """The netlist as run (an options line for the linear solver under its title line) and the
    solver asked for."""
    if linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"linear_solver must be one of {LINEAR_SOLVERS}, got {linear_solver!r}")
    if linear_solver == "klu" and not eng.klu:
        raise SpiceError(f"linear_solver='klu' asked for, but {eng.advice}")
    if not eng.klu:  # Sparse 1.3 is all there is; an engine without KLU would not know the option
        return text, "sparse"
    chosen = "sparse" if linear_solver == "sparse" else "klu"
    title, _, rest = text.partition("\n")
    return f"{title}\n.options {chosen}\n{rest}", chosen


_WARNED_NO_KLU = False


def _warn_once(eng: Engine) -> None:
    global _WARNED_NO_KLU
    if not eng.klu and not _WARNED_NO_KLU:
        _WARNED_NO_KLU = True
        warnings.warn(eng.advice, RuntimeWarning, stacklevel=4)


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
def run_netlist(text: str, *, backend: str = "subprocess", timeout: float = DEFAULT_TIMEOUT,
                linear_solver: str = "auto") -> dict[str, np.ndarray]:
    """Run one netlist and return its vectors ({name: values}); names as ngspice writes them,
    lower case (``v(r0_0)``, ``i(vs0)``).

    ``linear_solver``: ``"auto"`` (KLU where the engine has it, else Sparse 1.3), ``"klu"`` (a
    :class:`SpiceError` on an engine without it) or ``"sparse"``; the runner adds the options line.
    """
    return _run(text, backend, timeout, linear_solver)[0]


def _run(text: str, backend: str, timeout: float, linear_solver: str) -> tuple[dict[str, np.ndarray], str]:
    """:func:`run_netlist`, and the linear solver ngspice says it used ("klu" or "sparse")."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"linear_solver must be one of {LINEAR_SOLVERS}, got {linear_solver!r}")
    if backend == "pyspice":
        eng = _engine("pyspice", 60.0)
        _warn_once(eng)
        text, chosen = _solver_options(text, linear_solver, eng)
        vectors, output = _run_pyspice(text)
        return vectors, _solver_used(output, chosen)
    try:
        timeout = units.real(timeout, "timeout")
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], got {units.shown(timeout)}")
    binary = ngspice_binary()
    eng = _engine("subprocess", min(timeout, 60.0))
    _warn_once(eng)
    text, chosen = _solver_options(text, linear_solver, eng)
    with tempfile.TemporaryDirectory(prefix=_work_prefix()) as work:
        cir = Path(work) / "circuit.cir"
        raw = Path(work) / "out.raw"
        try:
            cir.write_text(text, encoding="ascii")
        except OSError as err:
            raise SpiceError(f"cannot write the netlist to the temporary directory {work}: {err}; "
                             "free some space or set TMPDIR to another disk") from None
        returncode, output = _batch(
            [binary, "-b", "-r", str(raw), str(cir)], work, timeout,
            f"ngspice did not finish within the {timeout:g} s timeout; pass a larger timeout or simulate "
            "a smaller array (memsim.solve handles large ones)")
        if returncode < 0:
            raise SpiceError(f"ngspice was killed by signal {-returncode}", output)
        _check_output(output)
        if returncode != 0:
            raise SpiceError(f"ngspice exited with status {returncode}: "
                             + " | ".join(output.strip().splitlines()[-5:]), output)
        if not raw.exists():
            raise SpiceError("ngspice wrote no results: " + " | ".join(output.strip().splitlines()[-5:]), output)
        return _check_finite(parse_rawfile(raw.read_bytes()), output), _solver_used(output, chosen)


def _solver_used(output: str, chosen: str) -> str:
    """The linear solver ngspice reports ("Using KLU as Direct Linear Solver"); ``chosen`` where
    it reports none."""
    match = re.search(r"using (klu|sparse)\b", output, re.IGNORECASE)
    return match.group(1).lower() if match else chosen


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


def _pyspice_instance():
    global _PYSPICE
    import logging

    logger = logging.getLogger("PySpice")
    level = logger.level
    # PySpice 1.5 warns (ngspice 39) or logs (ngspice 46) "Unsupported Ngspice version", then runs
    # correctly.
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
            if _PYSPICE is None:
                _PYSPICE = NgSpiceShared.new_instance()
    except Exception as err:  # PySpice raises several types when libngspice.so is missing
        raise SpiceError(f"the PySpice backend could not load libngspice ({err}); install "
                         "libngspice0-dev or use backend='subprocess'") from None
    finally:
        logger.setLevel(level)
    return _PYSPICE


def _run_pyspice(text: str) -> tuple[dict[str, np.ndarray], str]:
    if "\n.tran" in text:
        raise SpiceError("the pyspice backend runs .op netlists only; use backend='subprocess' for transients")
    ng = _pyspice_instance()
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
    return _check_finite(result, output), output


# -- resource guard ----------------------------------------------------------------------------
def estimate_cost(xb: Crossbar, klu: bool | None = None) -> tuple[float, float]:
    """Rough ngspice cost of one .op on ``xb``: (seconds, bytes); ``klu`` None asks :func:`engine`.

    With KLU, fitted to ngspice 46 on a 2-core machine (1T1R, the slowest kind): 2.0 s and 0.22 GB
    at 128x128, 19 s and 0.85 GB at 256x256; time grows as cells^1.6.  Without (Sparse 1.3),
    fitted to Debian's ngspice 39: about 0.2 s and 25 MB at 32x32, 4 s and 60 MB at 64x64; time
    grows as cells^2.2.
    """
    if klu is None:
        klu = _klu_available()
    cells = xb.rows * xb.cols
    if klu:
        return 2.0 * (cells / 16384) ** 1.6, 15e6 + 13e3 * cells
    return 0.2 * (cells / 1024) ** 2.2, 15e6 + 11e3 * cells


def max_cells() -> int:
    """The size limit of an ngspice run (cells): $MEMSIM_SPICE_MAX_CELLS, else the engine's default."""
    value = os.environ.get("MEMSIM_SPICE_MAX_CELLS")
    if value is None:
        return DEFAULT_MAX_CELLS if _klu_available() else DEFAULT_MAX_CELLS_SPARSE
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"MEMSIM_SPICE_MAX_CELLS must be an integer number of cells, got {value!r}") from None


def check_size(xb: Crossbar, force: bool = False) -> None:
    """Refuse (ResourceLimitError) an ngspice run above the size limit unless ``force``."""
    limit = max_cells()
    if force or xb.rows * xb.cols <= limit:
        return
    klu = _klu_available()
    seconds, nbytes = estimate_cost(xb, klu)
    why = "" if klu else " (this ngspice has no KLU solver; " + INSTALL_HINT + ")"
    raise ResourceLimitError(
        f"ngspice on a {xb.rows}x{xb.cols} {xb.kind} array is estimated at {seconds / 60:.1f} min and "
        f"{nbytes / 1e9:.1f} GB per run{why}; memsim refuses SPICE runs above "
        f"{limit} cells. Use memsim.solve for large arrays, or pass force=True (CLI: --force) or set "
        "MEMSIM_SPICE_MAX_CELLS to run it anyway")


# -- crossbar-level runs --------------------------------------------------------------------
def simulate(xb: Crossbar, v_in, *, cells: bool = False, backend: str = "subprocess",
             timeout: float = DEFAULT_TIMEOUT, force: bool = False, linear_solver: str = "auto") -> SolveResult:
    """Solve the MVM read of ``xb`` with ngspice.

    ``v_in``: (rows,) or (batch, rows) volts (a batch runs one ngspice job per vector).
    Returns a :class:`SolveResult` with ``i_col`` (cols,) or (batch, cols) A, ``v_row`` and
    ``v_col`` (rows, cols) V, and ``i_cell`` (rows, cols) A when ``cells`` is true.  Arrays
    above :func:`max_cells` are refused with a cost estimate unless ``force``.
    ``linear_solver``: ngspice's ``"klu"`` or ``"sparse"``; ``"auto"`` is KLU where the engine has it
    (``info["linear_solver"]`` says which ran).
    """
    v_in = check_inputs(xb, v_in)
    check_size(xb, force)
    biases = [mvm_bias(v, xb.cols) for v in np.atleast_2d(v_in)]
    return _run_biases(xb, biases, cells, backend, timeout, linear_solver, batched=v_in.ndim == 2)


def simulate_read(xb: Crossbar, row: int, col: int, v_read: float = 0.2, scheme: str = "v/2", *,
                  cells: bool = False, backend: str = "subprocess", timeout: float = DEFAULT_TIMEOUT,
                  force: bool = False, linear_solver: str = "auto") -> SolveResult:
    """Single-cell read of (``row``, ``col``) with a bias scheme (see :mod:`memsim.circuit.bias`).

    ``i_col[col]`` is the sensed current; driven unselected columns report the current into
    their driver, floating ones 0 A.
    """
    bias = read_bias(xb.rows, xb.cols, row, col, v_read, scheme)
    check_voltage(xb, v_read)
    return simulate_bias(xb, bias, cells=cells, backend=backend, timeout=timeout, force=force,
                         linear_solver=linear_solver)


def simulate_bias(xb: Crossbar, bias: Bias, *, cells: bool = False, backend: str = "subprocess",
                  timeout: float = DEFAULT_TIMEOUT, force: bool = False, linear_solver: str = "auto") -> SolveResult:
    """DC operating point of ``xb`` under any :class:`~memsim.circuit.bias.Bias`."""
    check_size(xb, force)
    return _run_biases(xb, [bias], cells, backend, timeout, linear_solver, batched=False)


def _run_biases(xb, biases, cells, backend, timeout, linear_solver, batched) -> SolveResult:
    rows, cols = xb.shape
    row_names = [f"v(r{i}_{j})" for i in range(rows) for j in range(cols)]
    col_names = [f"v(c{i}_{j})" for i in range(rows) for j in range(cols)]
    out = {"i_col": [], "v_row": [], "v_col": [], "i_cell": [], "source_power": []}
    t_start = time.perf_counter()
    used = set()
    for bias in biases:
        vectors, solver = _run(netlist.bias_op(xb, bias), backend, timeout, linear_solver)
        used.add(solver)
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
        out["source_power"].append(source_power(vectors))
        out["i_col"].append(i_col)
        out["v_row"].append(v_row)
        out["v_col"].append(v_col)
        if cells:
            out["i_cell"].append(_cell_currents(xb, v_row, v_col, v_mid))
    pick = (lambda k: np.array(out[k])) if batched else (lambda k: out[k][0])
    return SolveResult(pick("i_col"), pick("v_row"), pick("v_col"), pick("i_cell") if cells else None,
                       engine="ngspice", info={"backend": backend, "runs": len(biases),
                                               "linear_solver": "/".join(sorted(used)),
                                               "source_power": pick("source_power"),
                                               "seconds": time.perf_counter() - t_start})


#: The netlist's driving sources (row drivers, sense nodes, 1T1R gates) and their + nodes.
_SOURCE = re.compile(r"i\((vin|vs|vg)(\d+)\)")
_SOURCE_NODE = {"vin": "in", "vs": "s", "vg": "gl"}


def source_power(vectors: dict[str, np.ndarray]) -> float:
    """Power (W) every driving source of an ``.op`` run delivers: sum of -V * i(V) over the row
    drivers, the sense nodes and the 1T1R gate lines (ngspice's i(V) flows into the + node, so a
    source delivering power reads negative).  The 0 V sources standing for ideal wire segments
    deliver none and are left out."""
    total = 0.0
    for key, current in vectors.items():
        match = _SOURCE.fullmatch(key)
        if match:
            total -= float(vectors[f"v({_SOURCE_NODE[match[1]]}{match[2]})"][0]) * float(current[0])
    return total


def _cell_currents(xb: Crossbar, v_row, v_col, v_mid) -> np.ndarray:
    """Cell currents from ngspice's node voltages through the same element equations."""
    if xb.kind == "ohmic":
        return xb.g * (v_row - v_col)
    if xb.kind == "device":
        return xb.device_params.current(v_row - v_col, xb.gap)
    return xb.device_params.current(v_row - v_mid, xb.gap)


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
                     linear_solver: str = "auto", **pulse_options) -> ProgramResult:
    """Run :func:`memsim.circuit.netlist.program` with ngspice and return every cell's gap over time."""
    check_size(xb, force)
    text = netlist.program(xb, row, col, v_pulse, t_pulse, scheme=scheme, **pulse_options)
    vectors = run_netlist(text, backend="subprocess", timeout=timeout, linear_solver=linear_solver)
    rows, cols = xb.shape
    try:
        t = vectors["time"]
        gap = np.stack([vectors[f"v(x{i}_{j})"] for i in range(rows) for j in range(cols)], axis=1)
        i_sel = -vectors[f"i(vin{row})"]
    except KeyError as err:
        raise SpiceError(f"ngspice transient results lack the vector {err.args[0]}") from None
    # The built-in subcircuit carries the gap in nm; a Verilog-A state is in the model's own unit.
    scale = 1e-9 if isinstance(xb.device_params, RRAMParams) else 1.0
    return ProgramResult(t, gap.reshape(len(t), rows, cols) * scale, i_sel, (row, col))
