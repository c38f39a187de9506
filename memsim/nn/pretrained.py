"""The built-in models' seed-0 weights, shipped with memsim so that first use takes seconds.

``memsim/nn/weights/`` holds one model file (:func:`memsim.nn.models.save`) per built-in model,
trained with seed 0 and its recipe (:data:`memsim.nn.training.RECIPES`), and ``manifest.json``:
per model the file's SHA-256, the recipe it was trained with, the torch version and its float
test accuracy.  A file is used only when its hash matches and its recipe is today's recipe;
other seeds, a changed recipe or an explicit request (``memsim infer --retrain``) train instead.
``python3 scripts/ship_weights.py`` writes the folder anew.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..io import check_format

WEIGHTS = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS / "manifest.json"
FORMAT = "memsim-weights"
VERSION = 1
#: The seed whose weights are shipped.
SEED = 0


def manifest() -> dict:
    """The shipped manifest (an empty one when memsim was installed without its weights)."""
    if not MANIFEST.exists():
        return {"format": FORMAT, "version": VERSION, "models": {}}
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    check_format(data, MANIFEST, "weights manifest", FORMAT, VERSION, ValueError, advice="reinstall memsim")
    return data


def _entry(name: str) -> dict | None:
    from .training import RECIPES

    entry = manifest()["models"].get(name)
    if entry is None or entry.get("recipe") != dict(zip(("epochs", "batch_size", "lr"), RECIPES[name])):
        return None
    return entry


def available(name: str, seed: int = SEED) -> bool:
    """Whether shipped weights stand for built-in model ``name`` trained with ``seed``."""
    return seed == SEED and _entry(name) is not None


def load(name: str):
    """The shipped seed-0 model ``name`` (a torch module in eval mode), its file's SHA-256 checked."""
    from . import models

    entry = _entry(name)
    if entry is None:
        raise ValueError(f"no shipped weights for {name!r} with its current recipe; "
                         f"shipped: {', '.join(manifest()['models']) or 'none'}")
    path = WEIGHTS / entry["file"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{path}: SHA-256 {digest[:12]}... does not match the manifest's "
                         f"{entry['sha256'][:12]}...: the file was changed; reinstall memsim or train with --retrain")
    model, architecture = models.load(path)
    if architecture != name:
        raise ValueError(f"{path} holds {architecture!r}, the manifest says {name!r}; reinstall memsim")
    return model
