"""The customer–supplier network within the region (imitation and demand run along it)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from mittelbau.core.categories import INDUSTRIES, POSITIONS

# Which value-chain positions a supplier of each position sells to (assumption: goods flow
# from job shops and parts suppliers through system suppliers to final-product makers).
CUSTOMER_POSITIONS = {
    "final": (),
    "system": ("final",),
    "parts": ("final", "system"),
    "job_shop": ("final", "system", "parts"),
}


def supplier_network(
    industry: np.ndarray,
    position: np.ndarray,
    customers_per_supplier: int,
    same_industry: float,
    rng: np.random.Generator,
) -> sparse.csr_array:
    """Binary n × n matrix C with C[i, j] = 1 when firm j is a customer of supplier i.

    Each supplier draws `customers_per_supplier` customers among the positions it sells to,
    from its own industry with probability `same_industry` (when that industry has any),
    otherwise from all industries. Loops run over position × industry groups, not firms.
    """
    n = len(industry)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for pos_label, targets in CUSTOMER_POSITIONS.items():
        suppliers = np.flatnonzero(position == POSITIONS.index(pos_label))
        if not targets or len(suppliers) == 0:
            continue
        sells_to = np.zeros(len(POSITIONS), dtype=bool)
        sells_to[[POSITIONS.index(t) for t in targets]] = True
        eligible = sells_to[position]
        pool_all = np.flatnonzero(eligible)
        if len(pool_all) == 0:
            continue
        sup = np.repeat(suppliers, customers_per_supplier)
        chosen = pool_all[rng.integers(len(pool_all), size=len(sup))]
        local = rng.random(len(sup)) < same_industry
        pool_industry, sup_industry = industry[pool_all], industry[sup]
        for k in range(len(INDUSTRIES)):
            pool = pool_all[pool_industry == k]
            pick = local & (sup_industry == k)
            if len(pool) and pick.any():
                chosen[pick] = pool[rng.integers(len(pool), size=int(pick.sum()))]
        rows.append(sup)
        cols.append(chosen)
    # 32-bit indices while they fit: half the index memory, faster products
    index = np.int32 if n < np.iinfo(np.int32).max else np.int64
    r = np.concatenate(rows).astype(index) if rows else np.empty(0, dtype=index)
    c = np.concatenate(cols).astype(index) if cols else np.empty(0, dtype=index)
    matrix = sparse.csr_array((np.ones(len(r)), (r, c)), shape=(n, n))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def degree(adjacency: sparse.csr_array) -> np.ndarray:
    """Row sums of a binary matrix in canonical form (ones, no duplicates), read off its row
    pointers instead of summing."""
    return np.diff(adjacency.indptr).astype(float)


def neighbour_share(
    adjacency: sparse.csr_array, degree: np.ndarray, x: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Share of each firm's neighbours with property `x`; `fallback` where a firm has none."""
    return neighbour_shares(adjacency, degree, [x], [fallback])[0]


def neighbour_shares(
    adjacency: sparse.csr_array,
    degree: np.ndarray,
    xs: list[np.ndarray],
    fallbacks: list[np.ndarray],
) -> list[np.ndarray]:
    """`neighbour_share` of each of `xs` (with its fallback): one sparse product per column
    (scipy's product with one vector runs faster than with several columns at once, and gives
    the same sums)."""
    d, none = np.maximum(degree, 1), np.flatnonzero(degree <= 0)
    shares = []
    for x, fb in zip(xs, fallbacks, strict=True):
        share = (adjacency @ x.astype(float)) / d
        share[none] = fb[none]  # (a few rows: faster than a masked choice over all of them)
        shares.append(share)
    return shares
