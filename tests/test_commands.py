"""The command line: memsim/cli.py builds every parser, and a command's module
(memsim.commands.<name>) loads only when that command runs; the network experiments are
memsim.experiments, also under their old name memsim.nn.experiments."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memsim.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
#: The smallest command line of each parser that holds a command (positionals filled in).
COMMAND_LINES = (["demo"], ["netlist"], ["simulate"], ["calibrate"], ["study", "c.toml"], ["plot", "r.csv"],
                 ["infer"], ["compensate", "fit", "--out", "c.npz"], ["compensate", "eval", "c.npz"],
                 ["compensate", "show", "c.npz"], ["fit", "iv.csv"])
#: Command modules that import torch.
TORCH_COMMANDS = ("infer", "compensate")


def test_every_parser_names_a_command_function_that_exists():
    parser = build_parser()
    targets = {}
    for argv in COMMAND_LINES:
        func = parser.parse_args(argv).func
        module, function = func.__name__.split(".")
        targets[" ".join(argv[:2] if argv[0] == "compensate" else argv[:1])] = (module, function)
    assert targets == {
        "demo": ("circuit", "cmd_demo"), "netlist": ("circuit", "cmd_netlist"),
        "simulate": ("circuit", "cmd_simulate"), "calibrate": ("calibrate", "cmd_calibrate"),
        "study": ("study", "cmd_study"), "plot": ("study", "cmd_plot"), "infer": ("infer", "cmd_infer"),
        "compensate fit": ("compensate", "cmd_fit"), "compensate eval": ("compensate", "cmd_eval"),
        "compensate show": ("compensate", "cmd_show"), "fit": ("fit", "cmd_fit")}
    for module, function in targets.values():
        if module in TORCH_COMMANDS:
            pytest.importorskip("torch")
        assert callable(getattr(importlib.import_module(f"memsim.commands.{module}"), function))


def test_help_loads_no_command_and_a_command_loads_only_its_own(tmp_path):
    code = ("import json, sys\n"
            "from memsim.cli import build_parser, main\n"
            "commands = lambda: sorted(m for m in sys.modules if m.startswith('memsim.commands.'))\n"
            "heavy = lambda: [m for m in ('numba', 'scipy', 'torch', 'matplotlib', 'PySpice') if m in sys.modules]\n"
            "build_parser().format_help()\n"
            "seen = {'help': [commands(), heavy()]}\n"
            "status = main(['netlist', '--kind', 'ohmic', '--rows', '2', '--cols', '3', '-o', "
            f"{str(tmp_path / 'a.cir')!r}])\n"
            "seen['netlist'] = [commands(), heavy(), status]\n"
            "print(json.dumps(seen))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["help"] == [[], []]
    assert seen["netlist"] == [["memsim.commands.circuit"], [], 0]
    cells = [line for line in (tmp_path / "a.cir").read_text().splitlines() if line.startswith("rx")]
    assert len(cells) == 2 * 3


def test_the_experiments_keep_their_old_name():
    pytest.importorskip("torch")
    import memsim
    import memsim.experiments
    import memsim.nn.experiments as old
    from memsim.nn.experiments import YEAR, aihwkit_pcm_config

    assert old is memsim.experiments and memsim.experiments is memsim.__getattr__("experiments")
    assert aihwkit_pcm_config is memsim.experiments.aihwkit_pcm_config
    assert YEAR == pytest.approx(365.25 * 86400)
    config = memsim.experiments.aihwkit_pcm_config()
    assert (config.tile, config.dac_bits, config.adc_bits, config.adc_range) == (512, 7, 9, 12.0)
