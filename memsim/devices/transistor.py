"""The 1T1R access transistor: a SPICE model card plus the fast solver's reduced model.

The SPICE side always uses a real model card shipped under ``netlists/models/`` (default:
``nmos_level1.lib``, an ngspice level-1 NMOS with generic 0.18 um values, source named in
the file).  The fast solver uses the reduced Shichman-Hodges model

    vds >= 0:  id = beta (vov - vds/2) vds (1 + lambda vds)   if vds < vov   (linear)
               id = beta/2 vov^2 (1 + lambda vds)               otherwise     (saturation)
    vov = vgs - vto, id = 0 for vov <= 0, drain and source swapped for vds < 0,

with beta = KP W / L, plus a leakage conductance ``g_leak`` from drain to source (ngspice's
gmin across the drain junction, whose bulk is tied to the source; the netlist sets gmin to
``g_leak``).  For a level-1 card these are the card's own equations, so the two
engines agree exactly; for any other card the reduced parameters come from calibration.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import units
from ..io import read_text

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "netlists" / "models"
DEFAULT_CARD = MODELS_DIR / "nmos_level1.lib"

# A model card is data, never commands: comment lines, one kind of statement (.model of a
# MOSFET with name=number parameters) and its continuation lines.  ngspice runs a comment that
# starts with "*#" as a control command (leading blanks allowed) and a file whose first line
# is "*ng_script" as a script; both are refused, as is every other dot statement (.control,
# .endc, .include, .inc, .lib, .exec, .param, .func, .if, .csparam, ...), every element line,
# and expression syntax ({...}, '...', ";" and "$" comments).
_COMMENT = re.compile(r"^[ \t]*\*(?![ \t]*#)[ -~\t]*$")
_PARAMS = r"(?:[ \t]*[A-Za-z_]\w*[ \t]*=[ \t]*[0-9.+\-][A-Za-z0-9.+\-]*)*"
_MODEL_LINE = re.compile(r"^[ \t]*\.model[ \t]+([A-Za-z_]\w*)[ \t]+(nmos|pmos)[ \t]*(\(?)(" + _PARAMS + r")[ \t]*(\)?)[ \t]*$",
                         re.IGNORECASE)
_CONTINUATION = re.compile(r"^[ \t]*\+(" + _PARAMS + r")[ \t]*(\)?)[ \t]*$")
_PAIR = re.compile(r"([A-Za-z_]\w*)[ \t]*=[ \t]*(\S+)")
#: Largest model card read (bytes).
MAX_CARD_BYTES = 1 << 20


def read_model_card(path: str | Path) -> tuple[str, str, dict[str, float]]:
    """Read and check a MOSFET model card; return (text, model name, parameters).

    Accepted lines: blank lines, ``*`` comments (not ``*#``, which ngspice runs as a command,
    nor ``*ng_script``), ``.model NAME nmos|pmos (key=number ...)`` and ``+ key=number ...``
    continuation lines, printable ASCII only; every number must parse as a SPICE number.
    Anything else (``.control``, ``.include``, ``.lib``, ``.param``, expressions in braces,
    element lines) is refused with the line number, so a card cannot carry a statement into a
    netlist.  The card must be a regular file of at most 1 MiB.
    """
    path = Path(path)
    text = read_text(path, "model card", MAX_CARD_BYTES, encoding="ascii")
    models, current = [], None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"model card {path}, line {number}"
        if not line.strip():
            continue
        if line.lstrip().startswith("*"):
            if not _COMMENT.match(line) or "ng_script" in line.lower():
                raise ValueError(f"{where}: comments starting '*#' (and '*ng_script') are ngspice commands and are "
                                 f"refused; got {line.strip()[:60]!r}")
            continue
        model = _MODEL_LINE.match(line)
        continuation = _CONTINUATION.match(line)
        if model and (current is None or current[3]):
            current = [model.group(1), model.group(2).lower(), model.group(4), bool(model.group(5))]
            models.append(current)
        elif continuation and current is not None and not current[3]:
            current[2] += " " + continuation.group(1)
            current[3] = bool(continuation.group(2))
        else:
            raise ValueError(
                f"{where}: only '*' comments, '.model NAME nmos|pmos (key=number ...)' statements and '+ key=number' "
                f"continuation lines are accepted, got {line.strip()[:60]!r}")
    nmos = [m for m in models if m[1] == "nmos"]
    if len(nmos) != 1:
        raise ValueError(f"model card {path} must define exactly one NMOS .model, found {len(nmos)}")
    name, _, body, _ = nmos[0]
    params = {}
    for key, value in _PAIR.findall(body):
        try:
            params[key.lower()] = units.parse(value)
        except ValueError:
            raise ValueError(f"model card {path}: parameter {key} must be a SPICE number, got {value[:30]!r}") from None
    return text, units.check_name(name, "model name"), params


@dataclass(frozen=True)
class MosfetParams:
    """The access transistor: model card, drawn size, and the reduced model's parameters.

    ``w``, ``l`` in m.  ``beta`` (A/V^2), ``vto`` (V) and ``lambda_`` (1/V) default to the
    card's own level-1 values; for other card levels pass them (from calibration).
    """

    card: Path = DEFAULT_CARD
    w: float = 1e-6
    l: float = 0.5e-6
    beta: float | None = None
    vto: float | None = None
    lambda_: float | None = None
    g_leak: float = 1e-12
    card_text: str = field(init=False, repr=False, compare=False)
    model_name: str = field(init=False, compare=False)
    card_params: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.card, (str, Path)):
            raise ValueError(f"transistor card must be the path of a model card file, got {type(self.card).__name__}")
        object.__setattr__(self, "card", Path(os.fspath(self.card)))
        units.check_file_name(self.card.name, "model card")
        text, name, params = read_model_card(self.card)
        object.__setattr__(self, "card_text", text)
        object.__setattr__(self, "model_name", name)
        object.__setattr__(self, "card_params", params)
        for attr in ("w", "l"):
            value = getattr(self, attr)
            try:
                value = units.real(value)
            except ValueError:
                value = -1.0
            if not 1e-9 <= value <= 1e-3:
                raise ValueError(f"transistor {attr} must be a length in [1e-9, 1e-3] m, got {units.shown(getattr(self, attr))}")
            object.__setattr__(self, attr, value)
        level = params.get("level", 1.0)
        if level == 1.0:
            defaults = {"beta": params.get("kp", 2e-5) * self.w / self.l,
                        "vto": params.get("vto", 0.0), "lambda_": params.get("lambda", 0.0)}
            if params.get("gamma", 0.0) != 0.0:
                raise ValueError("a level-1 card for memsim needs gamma=0 (bulk is tied to source)")
        else:
            defaults = {}
        for attr in ("beta", "vto", "lambda_"):
            value = getattr(self, attr)
            if value is None:
                if attr not in defaults:
                    raise ValueError(
                        f"card {self.card.name} is level {level:g}: pass the reduced model's "
                        f"{attr} (from memsim calibration); only level-1 cards give them directly")
                value = defaults[attr]
            try:
                value = units.real(value)
            except ValueError:
                raise ValueError(f"transistor {attr} must be a finite number, got {units.shown(value)}") from None
            object.__setattr__(self, attr, value)
        try:
            g_leak = units.real(self.g_leak)
        except ValueError:
            g_leak = -1.0
        if not 0 <= g_leak <= 1e-3:
            raise ValueError(f"transistor g_leak must be a conductance in [0, 1e-3] S, got {units.shown(self.g_leak)}")
        object.__setattr__(self, "g_leak", g_leak)
        if self.beta <= 0 or self.lambda_ < 0:
            raise ValueError(f"transistor needs beta > 0 and lambda_ >= 0, got {self.beta}, {self.lambda_}")

    @property
    def card_hash(self) -> str:
        """SHA-256 of the model card text (what calibration files are tied to)."""
        return hashlib.sha256(self.card_text.encode()).hexdigest()

    def as_array(self) -> np.ndarray:
        """(beta, vto, lambda_, g_leak) for the Numba kernels."""
        return np.array([self.beta, self.vto, self.lambda_, self.g_leak], dtype=np.float64)


def drain_current(vgs, vds, p: MosfetParams):
    """Reduced-model drain current (A), numpy, any sign of vds (source/drain swap)."""
    vgs = np.asarray(vgs, dtype=float)
    vds = np.asarray(vds, dtype=float)
    sign = np.where(vds < 0, -1.0, 1.0)
    vgs_eff = np.where(vds < 0, vgs - vds, vgs)  # gate to the terminal acting as source
    vds_abs = np.abs(vds)
    vov = vgs_eff - p.vto
    clm = 1.0 + p.lambda_ * vds_abs
    lin = p.beta * (vov - 0.5 * vds_abs) * vds_abs * clm
    sat = 0.5 * p.beta * vov ** 2 * clm
    current = np.where(vov <= 0, 0.0, np.where(vds_abs < vov, lin, sat))
    return sign * current + p.g_leak * vds
