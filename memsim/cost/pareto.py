"""The Pareto front of design points that trade a cost (energy, area, latency) for a benefit
(accuracy): the points no other point beats on both at once."""
from __future__ import annotations

import numpy as np


def pareto_front(cost, benefit) -> np.ndarray:
    """Which points are on the Pareto front of low ``cost`` and high ``benefit``.

    Point p is dominated when another point q costs no more and gives no less, and is strictly
    better in one of the two (cost_q <= cost_p, benefit_q >= benefit_p, not both equal); the
    front is every point that is not dominated (equal points are all on it).

    Parameters
    ----------
    cost, benefit : array_like, shape (n,)
        Finite numbers (energy per inference in J and accuracy, say).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True where the point is on the front.

    Examples
    --------
    >>> pareto_front([1.0, 2.0, 3.0, 2.0], [0.5, 0.9, 0.9, 0.4]).tolist()
    [True, True, False, False]
    """
    c = np.asarray(cost, dtype=float)
    b = np.asarray(benefit, dtype=float)
    if c.ndim != 1 or b.shape != c.shape:
        raise ValueError(f"cost and benefit must be 1-D arrays of one length, got shapes {c.shape} and {b.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(b))):
        raise ValueError("cost and benefit must be finite numbers (drop failed points first)")
    # Cheapest first, best first among equal costs: p is dominated by a cheaper point that gives
    # at least as much, or by an equally cheap one that gives more.
    order = np.lexsort((-b, c))
    c_sorted, b_sorted = c[order], b[order]
    on_front = np.zeros(c.size, dtype=bool)
    best_cheaper = -np.inf
    start = 0
    while start < c.size:
        stop = start
        while stop < c.size and c_sorted[stop] == c_sorted[start]:
            stop += 1
        group = b_sorted[start:stop]
        best_here = group[0]  # the group's largest benefit (sorted descending within a cost)
        on_front[order[start:stop]] = (group == best_here) & (group > best_cheaper)
        best_cheaper = max(best_cheaper, best_here)
        start = stop
    return on_front
