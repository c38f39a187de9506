"""Every ```python block of README.md runs as written, in a fresh namespace of its own, from a
scratch folder: a reader can paste any one of them into python3 after `import memsim` works.

A block is skipped only when it needs an optional package that is not installed (or ngspice,
where it is absent), and the skip says which."""
import os
import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
#: Optional dependencies a block may need (module name -> what installs it).
OPTIONAL = {"torch": "pip install torch", "sklearn": "the nn extra", "mlxtend": "the nn extra",
            "dask": "the dist extra", "distributed": "the dist extra", "aihwkit": "aihwkit (see README)",
            "PySpice": "PySpice", "badcrossbar": "the bench extra"}


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced ```python block."""
    return [(text[:match.start()].count("\n") + 2, match.group(1))
            for match in re.finditer(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_the_extractor_finds_them():
    assert len(BLOCKS) >= 2
    assert python_blocks("x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n") == \
        [(3, "a = 1\n"), (9, "b = 2\n")]


@pytest.mark.slow
@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands in a scratch folder
    if "simulate" in code and shutil.which(os.environ.get("MEMSIM_NGSPICE", "ngspice")) is None:
        pytest.skip(f"README.md:{line} runs ngspice, which is not installed")
    try:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    except ModuleNotFoundError as err:
        root = (err.name or "").split(".")[0]
        if root not in OPTIONAL:
            raise
        pytest.skip(f"README.md:{line} needs {root} ({OPTIONAL[root]}), which is not installed")
