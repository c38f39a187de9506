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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import units

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "netlists" / "models"
DEFAULT_CARD = MODELS_DIR / "nmos_level1.lib"

_ALLOWED_LINE = re.compile(r"^\s*(\*.*|\+[^\n]*|\.model\s[^\n]*|\.MODEL\s[^\n]*)?$")
_MODEL_RE = re.compile(r"\.model\s+(\w+)\s+(nmos|pmos)\s*\(?([^)]*)\)?", re.IGNORECASE | re.DOTALL)


def read_model_card(path: str | Path) -> tuple[str, str, dict[str, float]]:
    """Read and check a MOSFET model card; return (text, model name, parameters).

    Only comment lines (``*``), ``.model`` lines and their ``+`` continuations are accepted,
    so a card cannot carry ``.control``, ``.include`` or any other statement into a netlist.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ValueError(f"model card not found: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"model card {path} is not plain ASCII text") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not _ALLOWED_LINE.match(line):
            raise ValueError(
                f"model card {path}, line {number}: only '*' comments, '.model' statements and "
                f"'+' continuation lines are accepted, got {line.strip()[:60]!r}")
    joined = re.sub(r"\n\s*\+", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("*")))
    models = _MODEL_RE.findall(joined)
    nmos = [m for m in models if m[1].lower() == "nmos"]
    if len(nmos) != 1:
        raise ValueError(f"model card {path} must define exactly one NMOS .model, found {len(nmos)}")
    name, _, body = nmos[0]
    params = {}
    for key, value in re.findall(r"(\w+)\s*=\s*([^\s=]+)", body):
        params[key.lower()] = units.parse(value)
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
        text, name, params = read_model_card(self.card)
        object.__setattr__(self, "card", Path(self.card))
        object.__setattr__(self, "card_text", text)
        object.__setattr__(self, "model_name", name)
        object.__setattr__(self, "card_params", params)
        for attr in ("w", "l"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"transistor {attr} must be a finite length > 0 m, got {value!r}")
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
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"transistor {attr} must be a finite number, got {value!r}")
            object.__setattr__(self, attr, float(value))
        if not (isinstance(self.g_leak, (int, float)) and math.isfinite(self.g_leak) and self.g_leak >= 0):
            raise ValueError(f"transistor g_leak must be a conductance >= 0 S, got {self.g_leak!r}")
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
