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

#: A Julian year (s): the drift times of the network studies are counted in it.
YEAR = 365.25 * 86400.0

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FILE_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,127}")
_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3,
           "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
#: Python ints at or beyond this magnitude have no double (float(10**400) overflows).
_INT_LIMIT = 1 << 1024
_NUM_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(meg|mil|[tgkmunpf])?[a-z]*$")


def real(value, what: str = "value", low: float | None = None, high: float | None = None, *,
         unit: str = "") -> float:
    """``value`` as a builtin ``float``, finite and within [``low``, ``high``]; ValueError otherwise.

    This is the one check every number a user gives memsim passes (arguments, spec and config
    keys, command-line options).  Booleans are refused (``True`` is not 1 V); a Python int too
    large for a double (``10**400`` from JSON) is refused in one line, not an OverflowError;
    ``-0.0`` becomes ``0.0``, so both engines (and the netlist text) see one zero.  Subclasses of
    int, float or numpy scalars are converted through the builtin types, so an object with its
    own ``__format__``, ``__repr__`` or ``__str__`` cannot choose its own text.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a real number, got {_kind_of(value)}")
    if isinstance(value, int) and not -_INT_LIMIT < int.__index__(value) < _INT_LIMIT:
        raise ValueError(f"{what} must be a finite number within double precision (|x| < 1.8e308), got {shown(value)}")
    try:
        if isinstance(value, float):  # the stored value, not what an override of __float__ says
            number = float.__float__(value)
        elif isinstance(value, int):
            number = float(int.__index__(value))
        else:
            number = value.item()
            number = float(number) if type(number) in (int, float) else number
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be a real number") from None
    if type(number) is not float:  # a numpy scalar's item() of an odd dtype
        raise ValueError(f"{what} must be a real number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {float.__repr__(number)}")
    number += 0.0  # -0.0 + 0.0 is +0.0: one zero everywhere
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{what} must be {_range(low, high, unit)}, got {float.__repr__(number)}{_unit(unit)}")
    return number


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def _range(low, high, unit: str) -> str:
    if low is not None and high is not None:
        return f"within [{low:g}, {high:g}]{_unit(unit)}"
    return f">= {low:g}{_unit(unit)}" if low is not None else f"<= {high:g}{_unit(unit)}"


def integer(value, what: str = "value", low: int | None = None, high: int | None = None) -> int:
    """``value`` as a builtin ``int`` within [``low``, ``high``] (bool refused); ValueError otherwise.

    An integral float (``1e3`` from JSON or a command line) is not accepted: counts are written
    as integers.  The message of a refusal shows a huge integer by its number of digits.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {_kind_of(value)}")
    number = int.__index__(value) if isinstance(value, int) else int(value.item())
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = (f"within [{low}, {high}]" if low is not None and high is not None
                  else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{what} must be an integer {bounds}, got {shown(number)}")
    return number


def _kind_of(value) -> str:
    """What a refused value is, for a message: its safe rendering if short, else its type."""
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean ({bool(value)})"
    return shown(value) if type(value) in (str, float) else f"a {type(value).__name__}"


def index(value, size: int, what: str) -> int:
    """``value`` as an index into ``size`` items; one-line ValueError naming ``what`` otherwise."""
    try:
        checked = integer(value)
    except ValueError:
        checked = None
    if checked is None or not 0 <= checked < size:
        raise ValueError(f"selected {what} must be an integer in [0, {size - 1}], got {shown(value)}")
    return checked


def fmt(value: float) -> str:
    """Format one real number for a netlist: shortest round-trip repr, never a suffix.

    >>> fmt(1e6), fmt(2.5e-6), fmt(0)
    ('1000000.0', '2.5e-06', '0.0')

    Raises ValueError for anything that is not a finite real number (NaN, inf, strings,
    booleans), because SPICE would either reject it or read it as something else.  The text
    always comes from the builtin float's own repr, whatever type ``value`` is.
    """
    try:
        return float.__repr__(real(value, "netlist number"))
    except ValueError:
        raise ValueError(f"expected a finite real number for the netlist, got a {type(value).__name__}") from None


def parse(text: str) -> float:
    """Parse a SPICE number with an optional scale suffix (``10k``, ``1meg``, ``2.5u``)."""
    match = _NUM_RE.match(text.strip().lower())
    if match is None:
        raise ValueError(f"not a SPICE number: {text!r}")
    return float(match.group(1)) * _SUFFIX.get(match.group(2) or "", 1.0)


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` as a builtin str if it is a safe SPICE identifier, else raise ValueError.

    Accepted: an ASCII letter or underscore followed by up to 63 letters, digits or
    underscores.  Rejected: everything else, including line breaks, spaces, dots
    (``.control``), ``*`` (comment commands) and non-ASCII.  A str subclass is reduced to
    its builtin value first, so its own ``__format__`` never reaches a netlist.
    """
    if isinstance(name, str):
        plain = str.__str__(name)
        if _NAME_RE.fullmatch(plain) is not None:
            return plain
    raise ValueError(
        f"{what} must be an identifier of ASCII letters, digits and underscores "
        f"(starting with a letter or underscore, at most 64 characters), got {shown(name)}")


def check_file_name(name: object, what: str = "file") -> str:
    """A file name (no folder) safe to quote in a netlist comment: ASCII letters, digits and
    ``_ . + -``, 1 to 128 characters, not starting with a dot; ValueError otherwise."""
    if isinstance(name, str):
        plain = str.__str__(name)
        if _FILE_RE.fullmatch(plain) is not None:
            return plain
    raise ValueError(f"{what} file name must be 1-128 ASCII letters, digits or _ . + - (not starting with a dot), "
                     f"got {shown(name)}")


def choice(value: object, accepted: tuple, what: str) -> str:
    """The element of ``accepted`` (builtin strings) equal to ``value`` by its builtin str value.

    Membership is tested on the builtin value, never with ``value.__eq__``, and what comes back
    is memsim's own string, so a str subclass cannot pass the check and then print otherwise.
    """
    if isinstance(value, str):
        plain = str.__str__(value)
        for item in accepted:
            if str.__eq__(item, plain):
                return item
    raise ValueError(f"{what} must be one of {', '.join(accepted)}, got {shown(value)}")


def shown(value: object) -> str:
    """A safe one-line rendering of a user value for an error message (a huge integer by its
    number of digits, never its thousands of them)."""
    if isinstance(value, str):
        return repr(str.__str__(value))[:80]
    if type(value) is int and abs(value) >= 10 ** 20:
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 13000 else 'over 4000'} digits"
    if type(value) in (bool, int, float):
        return repr(value)[:80]
    return f"a {type(value).__name__}"
