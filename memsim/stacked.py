"""Moved to :mod:`memsim.circuit.stacked`; this name stays importable for users' scripts.

``import memsim.stacked`` gives the module memsim.circuit.stacked itself (one module object under both
names, so patching either patches both).  Nothing inside memsim imports this name.
"""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("memsim.circuit.stacked")
