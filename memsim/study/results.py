"""The results CSV: written from the store in grid order, atomically, and read back."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..io import LIMITS, read_text, write_atomic
from .points import AXIS_COLUMNS, INT_COLUMNS, TEXT_COLUMNS, csv_cell


# ---------------------------------------------------------------------------------------------
# the results file
# ---------------------------------------------------------------------------------------------
def csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def read_rows(path: str | Path) -> tuple[list[str], list[dict], int]:
    """(header, rows as dicts of strings, number of damaged lines dropped) of a results file.

    A last line without its newline (the study was killed while writing it) and lines with
    the wrong number of fields are dropped.
    """
    text = read_text(path, "results file", LIMITS["results"])
    lines = text.split("\n")
    dropped = 0
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # truncated: the newline is written last
        dropped += 1
    if not lines:
        return [], [], dropped
    header = next(csv.reader([lines[0]]))
    rows = []
    for fields in csv.reader(lines[1:]):
        if len(fields) != len(header):
            dropped += 1
            continue
        rows.append(dict(zip(header, fields)))
    return header, rows, dropped


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results file with numbers parsed (int, float; None for empty cells)."""
    path = Path(path)
    header, rows, _ = read_rows(path)
    if "metric" not in header:
        raise ValueError(f"{path} is not a memsim study results file (no 'metric' column)")
    parsed = []
    for line, row in enumerate(rows, 2):
        out = {}
        for key, text in row.items():
            if text == "":
                out[key] = None
            elif key in TEXT_COLUMNS:
                out[key] = text
            elif key in INT_COLUMNS:
                try:
                    out[key] = int(text)
                except ValueError:
                    raise ValueError(f"{path}, row {line}: column {key} must be an integer, got {text[:40]!r}") from None
            else:
                try:
                    out[key] = float(text)
                except ValueError:
                    out[key] = text
        parsed.append(out)
    return parsed




def plain_value(value):
    """A builtin JSON value (numpy scalars unwrapped, NaN as None)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def export_csv(path: Path, header: list[str], order: list[str], stored: dict) -> None:
    """Rewrite the results CSV from the stored rows of this grid, in grid order (atomically)."""
    lines = [csv_line(header)]
    for key in order:
        if key not in stored:
            continue
        entry = stored[key]
        row = {"metric": entry["point"]["metric"], "error": entry["error"]}
        for axis, value in entry["point"].items():
            if axis != "metric":
                row[AXIS_COLUMNS[axis]] = value
        row.update(entry["result"])
        lines.append(csv_line([csv_cell(row.get(column)) for column in header]))
    write_atomic(path, "".join(lines))
