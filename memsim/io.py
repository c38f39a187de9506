"""File input and output: bounded reads of regular files only, atomic writes.

Every file memsim reads on a user's behalf (specs, study configs, model cards, calibration
files, results) goes through :func:`read_bytes`, which refuses folders, FIFOs, devices and
sockets and files above a size limit with one line saying which and why, so no path makes
memsim block or read without end.  Every file it writes goes through :func:`write_atomic`
(temporary file beside the target, then rename), which refuses to replace anything but a
regular file.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import FileError

#: Where generated files go when the user names no folder (relative to the working directory).
OUTPUT_DIR = Path("memsim_output")
#: The cache of trained built-in models (``memsim infer``, ``memsim compensate``, the scripts).
MODEL_CACHE = OUTPUT_DIR / "nn" / "models"

MIB = 1 << 20
#: Size limits (bytes) of what memsim reads: text configs, model cards, array specs, results.
LIMITS = {"config": 1 * MIB, "card": 1 * MIB, "spec": 512 * MIB, "results": 512 * MIB, "model": 256 * MIB,
          "compensation": 256 * MIB}
#: Deepest nesting of lists and objects accepted in a JSON file.
MAX_JSON_DEPTH = 32

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, what: str, limit: int, error: type[Exception] = FileError) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes; anything else raises
    ``error`` naming ``what`` in one line (missing, a folder, a FIFO, a device, too large)."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what it is.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise error(f"{what} {path} is {info.st_size / MIB:.1f} MiB; memsim reads at most {limit / MIB:g} MiB")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise error(f"{what} {path} is larger than {limit / MIB:g} MiB, the most memsim reads")
        return b"".join(chunks)
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, what: str, limit: int, error: type[Exception] = FileError,
              encoding: str = "utf-8") -> str:
    """:func:`read_bytes` decoded; undecodable text raises ``error``."""
    data = read_bytes(path, what, limit, error)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not {'plain ASCII' if encoding == 'ascii' else encoding.upper()} text") from None


def json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, what: str, error: type[Exception] = FileError, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON text that nests at most ``max_depth`` levels; anything else raises ``error``."""
    import json

    if json_depth(text) > max_depth:
        raise error(f"{what} nests lists or objects more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as err:
        raise error(f"{what} is not valid JSON (truncated or corrupt?): {err}") from None


def check_target(path: str | Path) -> Path:
    """The path a write to ``path`` replaces (a symbolic link is followed); FileError if that
    exists and is not a regular file (a folder, a FIFO, a device: never replaced)."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as err:
        raise FileError(f"cannot write {path}: {err.strerror}") from None
    if not stat.S_ISREG(mode):
        raise FileError(f"cannot write {path}: it is {_kind(mode)}; memsim only replaces regular files")
    return target


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (never a half-written file); returns the path.

    The parent folder is created if needed.  An existing regular file is replaced (a symbolic
    link to one: its target is); anything else there (a folder, a FIFO, a device) raises
    FileError.  On any error the temporary file is removed and the target is left as it was;
    an operating-system error (permission, full disk) raises FileError naming the path.
    """
    try:
        return _write_atomic(check_target(path), data)
    except FileError:
        raise
    except OSError as err:
        raise FileError(f"cannot write {path}: {err.strerror or err}") from None


def _write_atomic(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_json(path: str | Path, what: str, error: type[Exception] = FileError, limit: int = LIMITS["config"]):
    """Parse a JSON file (regular, at most ``limit`` bytes, nested at most :data:`MAX_JSON_DEPTH`
    deep); anything else raises ``error`` naming ``what``."""
    return parse_json(read_text(path, what, limit, error), f"{what} {path}", error)


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix (.png, .svg)."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=150, bbox_inches="tight")
    return write_atomic(path, buffer.getvalue())


def check_format(header, source, what: str, tag: str, version: int, error=FileError, *,
                 keys: tuple[str, str] = ("format", "version"), advice: str = "") -> None:
    """Refuse, in one line, a stored artefact that is not ``tag`` or not of ``version``.

    Every versioned file of memsim (model files, compensation files, calibration files, the
    study store) carries a format tag and a version under ``keys``; ``header`` is that mapping
    as read (anything else is foreign).  A newer version is named as such, since upgrading
    memsim is then the way out.  ``advice`` is added to every refusal.
    """
    tag_key, version_key = keys
    found = header.get(tag_key) if isinstance(header, dict) else None
    tail = f"; {advice}" if advice else ""
    if found != tag:
        raise error(f"{source} is not a memsim {what} (format tag {found!r}, expected {tag!r}){tail}")
    got = header.get(version_key)
    if str(got) != str(version):
        newer = isinstance(got, (int, str)) and str(got).isdigit() and int(got) > int(version)
        raise error(f"{source} is a {what} of version {got!r}"
                    + (", written by a newer memsim" if newer else "") + f"; this memsim reads version {version}{tail}")
