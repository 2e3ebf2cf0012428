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


COLUMNS = tuple(f.name for f in fields(FirmTable))


def stack_tables(tables: Sequence[FirmTable]) -> FirmTable:
    """One table of the rows of `tables`, in order (a copy)."""
    return FirmTable(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in COLUMNS})


def table_rows(table: FirmTable, part: slice) -> FirmTable:
    """The rows `part` of `table` as a table of views: writes into its columns write the stack."""
    return FirmTable(**{name: getattr(table, name)[part] for name in COLUMNS})


class StackedTables:
    """The tables of runs stacked, kept from one year to the next. `spread` gives each run its
    rows of the stack as a table of views; `gather` stacks the runs' tables again, reusing each
    column of the stack whose views every run still holds (what the runs wrote into them is in
    the stack already) and concatenating only the columns some run has replaced (its survey
    traits, say). The result is the table that stacking the runs' tables gives, without copying
    the columns no run replaced."""

    def __init__(self, parts: Sequence[slice]) -> None:
        self.parts = list(parts)
        self.table: FirmTable | None = None
        self._cut: dict[str, np.ndarray] = {}  # the stack columns the views were cut from
        self._given: dict[str, list[np.ndarray]] = {}  # each run's view of them
        self._views: list[FirmTable] = []

    def gather(self, tables: Sequence[FirmTable]) -> FirmTable:
        """One table of the rows of `tables`, in order."""
        columns = {}
        for name in COLUMNS:
            given = self._given.get(name)
            if given is not None and all(getattr(t, name) is g for t, g in zip(tables, given, strict=True)):
                columns[name] = self._cut[name]
            else:
                columns[name] = np.concatenate([getattr(t, name) for t in tables])
        self.table = FirmTable(**columns)
        return self.table

    def spread(self) -> list[FirmTable]:
        """Each run's rows of the stack as a table of views (the same table objects each
        year, their columns cut anew where the stack's column changed)."""
        table = self.table
        if table is None:
            raise ValueError("spread before gather; allowed: gather, then spread")
        if not self._views:
            self._views = [table_rows(table, part) for part in self.parts]
            self._cut = {name: getattr(table, name) for name in COLUMNS}
            self._given = {name: [getattr(v, name) for v in self._views] for name in COLUMNS}
            return self._views
        for name in COLUMNS:
            column = getattr(table, name)
            if self._cut[name] is not column:  # (a column reused holds every run's view still)
                self._cut[name] = column
                self._given[name] = [column[part] for part in self.parts]
                for view, cut in zip(self._views, self._given[name], strict=True):
                    setattr(view, name, cut)
        return self._views


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
