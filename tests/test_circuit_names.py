"""The circuit modules live in memsim.circuit; their old names at the package top (memsim.bias,
memsim.spice, ...) and the package's public names keep working, as the same module objects."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memsim
import memsim.circuit

ROOT = Path(__file__).resolve().parent.parent
OLD_NAMES = ("array", "bias", "result", "netlist", "spice", "spec", "stacked", "netlist3d")


def test_old_names_import_as_the_circuit_modules_from_outside_the_repo(tmp_path):
    # A fresh interpreter started elsewhere: each old name imported before its new one (import
    # memsim itself loads only array, bias and result), then compared with the new one.
    code = ("import importlib, json, sys\n"
            f"names = {OLD_NAMES!r}\n"
            "old = {n: importlib.import_module('memsim.' + n) for n in names}\n"
            "from memsim.array import Crossbar\n"
            "from memsim.spice import simulate\n"
            "from memsim.stacked import StackedCrossbar\n"
            "import memsim.circuit.array, memsim.circuit.spice, memsim.circuit.stacked\n"
            "print(json.dumps({'same': {n: old[n] is importlib.import_module('memsim.circuit.' + n)\n"
            "                           and sys.modules['memsim.' + n] is old[n] for n in names},\n"
            "                  'names': sorted({m.__name__ for m in old.values()}),\n"
            "                  'attributes': [Crossbar is memsim.circuit.array.Crossbar,\n"
            "                                 simulate is memsim.circuit.spice.simulate,\n"
            "                                 StackedCrossbar is memsim.circuit.stacked.StackedCrossbar],\n"
            "                  'finders': [type(f).__name__ for f in sys.meta_path].count('_OldNames')}))\n"
            "importlib.reload(sys.modules['memsim'])  # installs its finder again, in place of the first\n"
            "print([type(f).__name__ for f in sys.meta_path].count('_OldNames'))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, after_reload = proc.stdout.splitlines()
    out = json.loads(first)
    assert out["same"] == {name: True for name in OLD_NAMES}
    assert out["names"] == sorted(f"memsim.circuit.{name}" for name in OLD_NAMES)
    assert out["attributes"] == [True, True, True]
    assert out["finders"] == 1 and after_reload == "1"


def test_names_that_never_existed_still_fail():
    with pytest.raises(ModuleNotFoundError, match="No module named 'memsim.no_such_module'"):
        importlib.import_module("memsim.no_such_module")


def test_patching_the_old_name_patches_the_module_the_package_uses(monkeypatch):
    import memsim.spice
    monkeypatch.setattr(memsim.spice, "max_cells", lambda: 0)
    with pytest.raises(memsim.ResourceLimitError, match="above 0 cells"):
        memsim.circuit.spice.check_size(memsim.Crossbar.ohmic([[1e-5]], 1.0, 1.0))


def test_package_attributes_name_the_circuit_modules():
    for name in OLD_NAMES:  # memsim.<name> without importing it first (a lazy attribute)
        assert getattr(memsim, name) is sys.modules[f"memsim.circuit.{name}"]
    assert memsim.circuit is sys.modules["memsim.circuit"]
    assert memsim.Crossbar is memsim.circuit.array.Crossbar
    assert memsim.Bias is memsim.circuit.bias.Bias and memsim.SCHEMES is memsim.circuit.bias.SCHEMES
    assert memsim.SolveResult is memsim.circuit.result.SolveResult
    assert memsim.simulate is memsim.circuit.spice.simulate
    assert memsim.simulate_read is memsim.circuit.spice.simulate_read
    assert memsim.StackedCrossbar is memsim.circuit.stacked.StackedCrossbar
    assert memsim.VerticalArray is memsim.circuit.stacked.VerticalArray


def test_crossbar_builds_every_kind_as_of_kind_does():
    g = [[20e-6, 5e-6], [8e-6, 30e-6]]
    v = [0.2, 0.1]
    for kind in memsim.circuit.array.KINDS:
        built = memsim.circuit.crossbar(kind, g, r_row=1.5, r_col=2.0, v_gate=1.7)
        assert built.kind == kind
        assert memsim.netlist.mvm(built, v) == memsim.netlist.mvm(
            memsim.Crossbar.of_kind(kind, g, r_row=1.5, r_col=2.0, v_gate=1.7), v)
    with pytest.raises(ValueError, match="cell kind must be one of ohmic, device, 1t1r, got 'diode'"):
        memsim.circuit.crossbar("diode", g)
