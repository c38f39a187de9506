"""Moved to :mod:`memsim.circuit.netlist3d`; this name stays importable for users' scripts.

``import memsim.netlist3d`` gives the module memsim.circuit.netlist3d itself (one module object under both
names, so patching either patches both).  Nothing inside memsim imports this name.
"""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("memsim.circuit.netlist3d")
