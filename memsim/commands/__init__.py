"""The work of memsim's subcommands, one module per command (the top layer, docs/design.md).

``memsim/cli.py`` builds every parser and imports a module here only when its command runs, so
``memsim --help`` loads none of them and each imports what its command needs at its top:

- :mod:`memsim.commands.circuit`: ``memsim demo``, ``memsim netlist``, ``memsim simulate``;
- :mod:`memsim.commands.calibrate`: ``memsim calibrate``;
- :mod:`memsim.commands.study`: ``memsim study`` and ``memsim plot``;
- :mod:`memsim.commands.infer`: ``memsim infer``;
- :mod:`memsim.commands.compensate`: ``memsim compensate fit|show|eval``;
- :mod:`memsim.commands.fit`: ``memsim fit``.

The choices below are what a parser offers and its command checks again; they live here, plain
tuples, so that the parsers can offer them without loading a command.  :func:`replaced` is how
every command says that a file it wrote took the place of an existing one.
"""
from __future__ import annotations

#: The built-in models of ``memsim infer`` and ``memsim compensate`` (``memsim.nn.MODELS``,
#: whose module loads torch).
MODEL_NAMES = ("mlp-digits", "mlp-mnist", "lenet-fashion", "resnet-fashion", "lstm-fashion", "vit-fashion")
#: Hardware settings of ``memsim compensate``.
COMPENSATE_HARDWARE = ("pcm", "rram", "ir")
#: Methods of ``memsim compensate fit``.
COMPENSATE_METHODS = ("gdc", "gdc-column", "bn", "vera", "ir-pre", "ir-column")


def replaced(existed: bool) -> str:
    """The note after a written file's name where it replaced an existing file, else ''."""
    return " (replaced the existing file)" if existed else ""
