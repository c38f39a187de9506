"""Exceptions raised by memsim."""


class MemsimError(Exception):
    """Base class of memsim's own errors."""


class SpiceError(MemsimError):
    """ngspice failed: missing binary, timeout, non-convergence, or an unreadable result.

    ``ngspice_output`` carries what ngspice printed, so the message can quote it.
    """

    def __init__(self, message: str, ngspice_output: str = ""):
        super().__init__(message)
        self.ngspice_output = ngspice_output


class ConvergenceError(MemsimError):
    """The fast solver did not reach its tolerance; ``residual`` says how far it got."""

    def __init__(self, message: str, residual: float = float("nan")):
        super().__init__(message)
        self.residual = residual


class ResourceLimitError(MemsimError, ValueError):
    """A run was refused because its estimated time or memory is above the configured limit."""


class FileError(MemsimError, ValueError):
    """A file memsim was asked to read or write is not usable: missing, not a regular file, too
    large, nested too deeply, or a write target that is a folder or a device."""


class CalibrationError(MemsimError):
    """A calibration could not be made or loaded (bad file, wrong card, failed fit)."""


def check_limit(what: str, estimate: float, limit: float, unit: str = "", advice: str = "") -> None:
    """Refuse work whose ``estimate`` (a count of points, passes, cells or bytes) is above
    ``limit``, before anything is allocated or expanded: one ResourceLimitError line with the
    estimate and the limit, e.g. ``"study grid: 3e+09 points asked, at most 1e+06"``."""
    if not estimate <= limit:  # NaN is refused too
        tail = f"; {advice}" if advice else ""
        unit = f" {unit}" if unit else ""
        raise ResourceLimitError(f"{what}: {_count(estimate)}{unit} asked, at most {_count(limit)}{unit}{tail}")


def _count(value: float) -> str:
    if isinstance(value, int) and value.bit_length() > 1000:  # no float holds it
        return f"about 1e+{int(value.bit_length() * 0.30103)}"
    return f"{int(value)}" if float(value).is_integer() and abs(value) < 1e10 else f"{value:.3g}"
