"""Moved to :mod:`memsim.circuit.netlist`; this name stays importable for users' scripts.

``import memsim.netlist`` gives the module memsim.circuit.netlist itself (one module object under both
names, so patching either patches both).  Nothing inside memsim imports this name.
"""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("memsim.circuit.netlist")
