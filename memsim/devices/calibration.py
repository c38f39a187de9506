"""A calibration file: the fast solver's reduced transistor (beta, vto, lambda) fitted to a
SPICE model card, tied to that card by its SHA-256 (see :mod:`memsim.calibrate`, which makes
it, and docs/design.md, "The calibration ladder").

It lives with the device models because it is one: the solver reads it (``solve(...,
calibration=)``) without depending on the ngspice sweeps and the fit that produced it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CalibrationError
from ..io import check_format, read_bytes, read_json, write_atomic
from .transistor import MAX_CARD_BYTES, MODELS_DIR, MosfetParams

SCHEMA = "memsim-calibration"
SCHEMA_VERSION = 1
BSIM4_CARD = MODELS_DIR / "nmos_bsim4.lib"
DEFAULT_CALIBRATION = MODELS_DIR / "nmos_bsim4.calibration.json"
FITTED = ("beta", "vto", "lambda_")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def card_hash(path: str | Path) -> str:
    """SHA-256 of a model card file's text (a regular file of at most 1 MiB, else CalibrationError)."""
    return hashlib.sha256(read_bytes(path, "model card", MAX_CARD_BYTES, CalibrationError)).hexdigest()


def mosfet_from(card, w, l, params) -> MosfetParams:
    """The reduced transistor of ``card`` (W, L in m) with fitted ``params`` {beta, vto, lambda_}."""
    return MosfetParams(card=card, w=w, l=l, beta=params["beta"], vto=params["vto"], lambda_=params["lambda_"])


@dataclass(frozen=True)
class Calibration:
    """Fitted reduced-transistor parameters tied to one model card (by SHA-256)."""

    card_file: str
    card_sha256: str
    model_name: str
    w: float
    l: float
    params: dict
    fit_ranges: dict
    residuals: dict
    uncalibrated_residuals: dict
    optimizer: dict
    card_dir: str = field(default=str(MODELS_DIR), compare=False, repr=False)

    @property
    def card_path(self) -> Path:
        return Path(self.card_dir) / self.card_file

    def mosfet(self):
        """The calibrated :class:`~memsim.devices.MosfetParams` (checks the card's hash)."""
        actual = card_hash(self.card_path)
        if actual != self.card_sha256:
            raise CalibrationError(
                f"model card {self.card_path} does not match this calibration (sha256 {actual[:12]}..., "
                f"calibrated against {self.card_sha256[:12]}...); rerun `memsim calibrate --card {self.card_path}`")
        return mosfet_from(self.card_path, self.w, self.l, self.params)

    def apply(self, xb):
        """``xb`` with its reduced transistor replaced by the calibrated one (1T1R crossbars only).

        The crossbar must already use this calibration's model card (that card is what ngspice
        simulates); anything else raises CalibrationError.
        """
        if xb.kind != "1t1r":
            return xb
        if xb.transistor.card_hash != self.card_sha256:
            raise CalibrationError(
                f"this crossbar's transistor card {xb.transistor.card.name} is not the card the calibration was "
                f"fitted to ({self.card_file}); build the crossbar with transistor=calibration.mosfet()")
        return dataclasses.replace(xb, transistor=self.mosfet())

    # -- files --
    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("card_dir")
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **data}

    def save(self, path: str | Path) -> Path:
        """Write the calibration as JSON, atomically."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION, card_dir: str | Path | None = None) -> "Calibration":
        """Read and validate a calibration file; refuses a foreign, corrupt or mismatched file.

        The model card is looked up by file name in ``card_dir`` (default: the folder of the
        calibration file) and its SHA-256 must match the one recorded at calibration time.
        """
        path = Path(path)
        data = read_json(path, "calibration file", CalibrationError)
        check_format(data, path, "calibration file", SCHEMA, SCHEMA_VERSION, CalibrationError,
                     keys=("schema", "schema_version"), advice="rerun memsim calibrate")
        try:
            card_file = data["card_file"]
            if not isinstance(card_file, str) or not _FILE_NAME.fullmatch(card_file) or card_file.startswith("."):
                raise CalibrationError(f"{path}: card_file must be a plain file name, got {card_file!r}")
            params = {k: float(data["params"][k]) for k in FITTED}
            if not all(math.isfinite(x) for x in params.values()) or params["beta"] <= 0 or params["lambda_"] < 0:
                raise CalibrationError(f"{path}: fitted parameters out of range: {params}")
            w, l = float(data["w"]), float(data["l"])
            if not (w > 0 and l > 0 and math.isfinite(w) and math.isfinite(l)):
                raise CalibrationError(f"{path}: w and l must be positive lengths")
            sha = data["card_sha256"]
            if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
                raise CalibrationError(f"{path}: card_sha256 must be 64 hex digits")
            calibration = cls(card_file=card_file, card_sha256=sha, model_name=str(data["model_name"]), w=w, l=l,
                              params=params, fit_ranges=dict(data["fit_ranges"]), residuals=dict(data["residuals"]),
                              uncalibrated_residuals=dict(data["uncalibrated_residuals"]),
                              optimizer=dict(data["optimizer"]),
                              card_dir=str(Path(card_dir) if card_dir is not None else path.parent))
        except CalibrationError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"{path} is missing or has a malformed field ({err!r}); "
                                   "rerun memsim calibrate") from None
        if not calibration.card_path.exists():
            raise CalibrationError(f"{path} was fitted to model card {card_file!r}, which is not in {calibration.card_dir}")
        calibration.mosfet()  # verifies the hash now, not at first use
        return calibration
