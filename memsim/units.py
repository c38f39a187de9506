"""SPICE number formatting and name checking: the one place user values become netlist text.

SPICE reads ``1M`` as milli and ``1MEG`` as mega, so memsim never emits scale suffixes:
every number is written in plain exponent notation by :func:`fmt`.  Every name that enters a
netlist passes :func:`check_name`, which accepts only ``[A-Za-z_][A-Za-z0-9_]*``; together
these make it impossible for user input to add a line, a ``.control`` block or a ``shell``
command to a netlist.
"""
from __future__ import annotations

import math
import re

import numpy as np

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3,
           "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_NUM_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(meg|mil|[tgkmunpf])?[a-z]*$")


def fmt(value: float) -> str:
    """Format one real number for a netlist: shortest round-trip repr, never a suffix.

    >>> fmt(1e6), fmt(2.5e-6), fmt(0)
    ('1000000.0', '2.5e-06', '0.0')

    Raises ValueError for anything that is not a finite real number (NaN, inf, strings,
    booleans), because SPICE would either reject it or read it as something else.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"expected a real number for the netlist, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number for the netlist, got {number!r}")
    return repr(number)


def parse(text: str) -> float:
    """Parse a SPICE number with an optional scale suffix (``10k``, ``1meg``, ``2.5u``)."""
    match = _NUM_RE.match(text.strip().lower())
    if match is None:
        raise ValueError(f"not a SPICE number: {text!r}")
    return float(match.group(1)) * _SUFFIX.get(match.group(2) or "", 1.0)


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a safe SPICE identifier, else raise ValueError saying why.

    Accepted: an ASCII letter or underscore followed by up to 63 letters, digits or
    underscores.  Rejected: everything else, including line breaks, spaces, dots
    (``.control``), ``shell``-style words are harmless on their own but can never start a
    line because names never start a line in memsim's netlists.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"{what} must be an identifier of ASCII letters, digits and underscores "
            f"(starting with a letter or underscore, at most 64 characters), got {name!r}")
    return name
