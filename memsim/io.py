"""File input and output: bounded reads of regular files only, atomic writes.

Every file memsim reads on a user's behalf (specs, study configs, model cards, calibration
files, results) goes through :func:`read_bytes`, which refuses folders, FIFOs, devices and
sockets and files above a size limit with one line saying which and why, so no path makes
memsim block or read without end.  Every file it writes goes through :func:`write_atomic`
(temporary file beside the target, then rename), which refuses to replace anything but a
regular file.
"""
from __future__ import annotations

import glob
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


def read_table(path: str | Path, what: str, columns: tuple, limit: int = LIMITS["config"],
               error: type[Exception] = FileError) -> list[tuple[int, list[str]]]:
    """The data rows of a CSV file whose header is ``columns``: ``(line number, fields)`` each.

    Blank lines and lines starting with ``#`` are skipped.  A file that is not UTF-8 text, has
    another header, or has a header and no data row raises ``error`` naming ``path``, so a reader
    never meets an empty table later (an IndexError far from the file).
    """
    import csv

    lines = [(number, line) for number, line in enumerate(read_text(path, what, limit, error).splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    expected = ",".join(columns)
    if not lines:
        raise error(f"{what} {path} is empty; expected a header {expected} and data rows")
    rows = list(csv.reader(line for _, line in lines))
    header = [field.strip() for field in rows[0]]
    if header != list(columns):
        raise error(f"{what} {path}: the header must be {expected}, got {','.join(header)[:200]}")
    if len(rows) == 1:
        raise error(f"{what} {path} has a header and no data rows; expected at least one row of {expected}")
    return [(number, row) for (number, _), row in zip(lines[1:], rows[1:])]


def check_finite(arrays: dict, source, error: type[Exception] = FileError) -> None:
    """Refuse, naming ``source`` and the array, a NaN or an infinity in any floating-point or
    complex array of ``arrays`` (numpy arrays, or torch tensors) loaded from a file."""
    import numpy as np

    for key, value in arrays.items():
        if hasattr(value, "is_floating_point"):  # a torch tensor: checked by torch, any dtype
            bad = (value.is_floating_point() or value.is_complex()) and not bool(value.isfinite().all())
        else:
            value = np.asarray(value)
            bad = value.dtype.kind in "fc" and not bool(np.isfinite(value).all())
        if bad:
            raise error(f"{source}: array {str(key)[:80]!r} holds NaN or infinite values; memsim refuses the file")


class _Refusal(Exception):
    """A refusal inside :func:`read_npz`, kept apart from the errors numpy and zipfile raise."""


def read_npz(raw: bytes, source, limit: int, error: type[Exception] = FileError) -> dict:
    """The arrays of an ``.npz`` archive (no pickle), each checked before it is inflated.

    Refused with ``error`` naming ``source``: a broken archive, members that inflate beyond
    ``limit`` bytes, a member whose ``.npy`` header declares more elements than ``limit`` bytes
    hold (numpy would allocate them before reading), object arrays, and NaN or infinity in a
    floating-point array (:func:`check_finite`).
    """
    import io
    import zipfile

    import numpy as np

    broken = f"{source} is not a readable .npz archive (truncated or foreign)"
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > limit:
                raise _Refusal(f"{source} would inflate to {total / MIB:.0f} MiB; memsim reads at most {limit / MIB:g} MiB")
            arrays = {}
            for member in members:
                name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(handle)
                    if dtype.hasobject:
                        raise _Refusal(f"{source}: array {name[:80]!r} holds Python objects; memsim reads numbers only")
                    count = 1
                    for size in shape:
                        count *= int(size)
                    if count * dtype.itemsize > limit:
                        raise _Refusal(f"{source}: array {name[:80]!r} declares {count:.3g} elements "
                                    f"({count * dtype.itemsize / MIB:.3g} MiB); memsim reads at most {limit / MIB:g} MiB")
                with archive.open(member) as handle:
                    arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
    except _Refusal as refusal:
        raise error(str(refusal)) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError, ValueError,
            NotImplementedError, SyntaxError, TypeError, MemoryError) as exc:
        raise error(f"{broken}: {' '.join(str(exc).split())[:200]}") from None
    check_finite(arrays, source, error)
    return arrays


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


def _check_folder_writable(folder: Path, what: str) -> None:
    """The nearest existing folder at or above ``folder`` must be a folder memsim may write in."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: mkdir would fail there
            raise FileError(f"cannot write {what} {folder}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise FileError(f"cannot write {what} {folder}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FileError(f"cannot write {what} {folder}: no permission to write in {probe}")


def check_out_folder(folder: str | Path, names: tuple = (), what: str = "output folder") -> Path:
    """Check, before any work, that ``folder`` can hold the files ``names``: it is a folder or
    can be made one, memsim may write there, and no name in it is a folder or a device; one
    FileError line otherwise.  Returns the folder as a Path."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileError(f"{what} {folder} is {'a file' if folder.is_file() else _kind(os.stat(folder).st_mode)}, "
                        "not a folder")
    _check_folder_writable(folder, what)
    for name in names:
        check_target(folder / name)
    return folder


def check_out_file(path: str | Path, what: str = "output file") -> Path:
    """Check, before any work, that ``path`` can be written: not a folder or device (an existing
    regular file is replaced), in a folder memsim may write in; one FileError line otherwise."""
    path = Path(path)
    if path.is_dir():
        raise FileError(f"cannot write {what} {path}: it is a folder; name a file")
    target = check_target(path)
    _check_folder_writable(target.parent, what)
    return path


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


def remove_stale_temporaries(path: str | Path) -> int:
    """Remove the temporary files :func:`write_atomic` leaves next to ``path`` when its process is
    killed between writing and renaming (``.<name>.*.tmp``); returns how many.  Only for a
    caller that knows no other writer of ``path`` is alive (a study holding its store's lock)."""
    path = Path(path)
    removed = 0
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


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
