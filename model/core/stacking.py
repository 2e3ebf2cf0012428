"""The firms of several runs stacked as one set of rows: the tables, per-row parameters and
block-diagonal networks the vectorised kernels of the step read (`model.Cohort`).

Run r holds the rows `parts[r]` of the stack. Stacking keeps every number of a run as it is:
the kernels are elementwise per row, sums by group run over groups of one run (codes offset
by the run), and a row of a block-diagonal sparse matrix holds its run's entries in the same
order, so a run's rows of a stacked result equal the run computed alone, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
from scipy import sparse

from mittelbau.core.population import FirmTable


def parts_of(sizes: Sequence[int]) -> list[slice]:
    """The rows of each run in a stack of runs of `sizes` rows."""
    ends = np.cumsum(sizes)
    return [slice(int(e - n), int(e)) for n, e in zip(sizes, ends, strict=True)]


def stack_tables(tables: Sequence[FirmTable]) -> FirmTable:
    """One table of the rows of `tables`, in order (a copy)."""
    return FirmTable(
        **{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(FirmTable)}
    )


def table_rows(table: FirmTable, part: slice) -> FirmTable:
    """The rows `part` of `table` as a table of views: writes into its columns write the stack."""
    return FirmTable(**{f.name: getattr(table, f.name)[part] for f in fields(FirmTable)})


def block_diagonal(matrices: Sequence[sparse.csr_array]) -> sparse.csr_array:
    """The CSR matrices on the diagonal of one, each row's entries in their stored order (so a
    row's products sum in the order of its run alone)."""
    rows = np.cumsum([0] + [m.shape[0] for m in matrices])
    cols = np.cumsum([0] + [m.shape[1] for m in matrices])
    stored = np.cumsum([0] + [m.nnz for m in matrices])
    indptr = np.concatenate(
        [m.indptr[:-1] + s for m, s in zip(matrices, stored, strict=False)] + [stored[-1:]]
    )
    indices = np.concatenate([m.indices + c for m, c in zip(matrices, cols, strict=False)])
    data = np.concatenate([m.data for m in matrices])
    return sparse.csr_array((data, indices, indptr), shape=(int(rows[-1]), int(cols[-1])))


class RowParams:
    """The parameter sets of stacked runs read per row: a value every run shares as it is, one
    that differs as the array of each row's run value. The kernels read it like one `Params`."""

    def __init__(self, params: Sequence[Any], sizes: Sequence[int]) -> None:
        self._params = list(params)
        self._sizes = np.asarray(sizes)
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = per_row([getattr(p, name) for p in self._params], self._sizes)
        return self._cache[name]


def per_row(values: Sequence[Any], sizes: Sequence[int] | np.ndarray) -> Any:
    """One value per run as rows read it: the value itself when every run has it, else each
    row's run value."""
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    return np.repeat(np.asarray(values), sizes)
