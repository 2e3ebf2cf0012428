"""The supplier network and the neighbour shares read off it."""

import numpy as np

from mittelbau.core.network import degree, neighbour_share, neighbour_shares, supplier_network


def test_neighbour_shares_count_each_column_as_its_own_product():
    """Several properties counted in one pass over the ties give, bit for bit, each one's own
    sparse product divided by the degree, and the fallback where a firm has no neighbour."""
    rng = np.random.default_rng(4)
    n = 600
    industry = rng.integers(0, 7, n)
    position = rng.integers(0, 4, n)
    customers = supplier_network(industry, position, 3, 0.5, rng)
    d = degree(customers)
    assert (d == 0).any() and (d > 0).any()  # both cases are exercised
    xs = [rng.random(n) < 0.3, rng.random(n), rng.random(n) < 0.7]
    fallbacks = [np.full(n, 0.25), rng.random(n), np.zeros(n)]
    together = neighbour_shares(customers, d, xs, fallbacks)
    for x, fb, got in zip(xs, fallbacks, together, strict=True):
        counts = customers @ x.astype(float)
        expected = np.where(d > 0, counts / np.maximum(d, 1), fb)
        assert got.tobytes() == expected.tobytes()
        assert neighbour_share(customers, d, x, fb).tobytes() == expected.tobytes()
    # a firm's share is the share of its customers with the property
    i = int(np.flatnonzero(d >= 2)[0])
    ties = customers.indices[customers.indptr[i] : customers.indptr[i + 1]]
    assert together[0][i] == xs[0][ties].mean()
