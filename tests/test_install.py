"""scripts/install.sh's "already installed" check: it must look from outside the source tree,
where the tree itself is not importable, and require the `memsim` command."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install.sh"


def check(python: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=python)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["bash", str(SCRIPT), "--check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def without_memsim(tmp_path: Path) -> str:
    """This interpreter with its installed packages but not memsim: -S skips site-packages'
    .pth files (where an editable install hooks memsim in), PYTHONPATH still lists the folders."""
    import site

    exe = tmp_path / "python-without-memsim"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{os.pathsep.join(site.getsitepackages())}" exec "{sys.executable}" -S "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_the_check_passes_where_memsim_is_installed():
    result = check(sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is installed" in result.stdout


def test_the_check_fails_where_only_the_source_tree_is_importable(tmp_path):
    # From the repository root the source tree is importable; the install is not there.
    python = without_memsim(tmp_path)
    from_root = subprocess.run([python, "-c", "import memsim"], cwd=ROOT, capture_output=True)
    assert from_root.returncode == 0, from_root.stderr
    elsewhere = subprocess.run([python, "-c", "import numpy, torch; import memsim"], cwd=tmp_path, capture_output=True)
    assert b"No module named 'memsim'" in elsewhere.stderr
    result = check(python)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not installed" in result.stdout


def test_the_check_fails_without_the_memsim_command(tmp_path):
    # memsim imports, but no `memsim` on PATH: the README's `memsim demo` would not run.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname", "cat"):
        target = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if target:
            (bindir / tool).symlink_to(target)
    result = check(sys.executable, path=str(bindir))
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["pyproject.toml"])
def test_the_build_system_is_declared(name):
    # Without a [build-system] table pip's editable install falls back to `setup.py develop`,
    # whose nested pip call fails on Debian's externally managed python3.
    import tomllib

    table = tomllib.loads((ROOT / name).read_text())["build-system"]
    assert table["build-backend"] == "setuptools.build_meta"
