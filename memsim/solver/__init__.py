"""The fast nodal solver: ``solve`` (MVM read), ``solve_read`` (single-cell read schemes),
``solve_bias`` (any line-end bias) and ``effective_matrix`` (ohmic i_col = M v); ``TileRead``
(:mod:`memsim.solver.tile_read`) is the read of one tile for whole batches of input vectors by
one of four paths (ideal wires, effective matrix, the batched nonlinear kernel, the exact
solver per vector) with its self-check against ``solve``; tiles of :mod:`memsim.nn` run it.

Kernels live in the kernel-only modules ``_lines`` (line-structured linear algebra),
``_batched`` (the batched nonlinear read), ``_pcg`` (the fused conjugate-gradient Newton step
for lines with r > 0), ``_blocks`` (the direct block elimination behind ``effective_matrix``)
and ``_cells`` (cell currents);
:mod:`memsim.solver.core` validates and dispatches, :mod:`memsim.solver.coarse` adds the
coarse-grid correction for long resistive lines (two-level CG), and
:mod:`memsim.solver.reference` holds the slow scipy reference the tests compare with.
Importing this package compiles nothing: Numba compiles (or loads its cache) on the first solve;
``warm_up()`` (run by ``scripts/install.sh``) compiles everything once into Numba's cache.
"""
from .core import effective_matrix, solve, solve_bias, solve_read, warm_up
from .tile_read import TileRead

__all__ = ["solve", "solve_read", "solve_bias", "effective_matrix", "warm_up", "TileRead"]
