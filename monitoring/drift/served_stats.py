"""Evidently's default numeric tests from aggregates: the same verdicts without the rows.

Why it exists. The served-traffic report (`monitoring.drift.served`) cannot hold 10M served
values of a column in memory, so DuckDB reduces each column to small aggregates, and these
functions turn them into the verdict `statistics.numeric_test` would give on the rows:

- KS (reference of <= 1000 values): the statistic D is exact from the current counts `<= u`
  and `< u` at each distinct reference value u (both empirical CDFs are steps, and between
  two reference values only the current one moves, monotonically, so the largest gap sits at
  a reference value or just before one). Its p-value is scipy's own: on a current sample
  rebuilt with the same counts at those points (same D, same sizes, so the same exact or
  asymptotic p-value) when that sample is small, else scipy's asymptotic formula
  (`kstwo.sf(D, round(n1 n2 / (n1 + n2)))`, what `ks_2samp` does above 10 000 values).
- Wasserstein (normed by the reference std): the count and sum of the current values in
  each of `CELLS` equal-width cells over the reference range (a cheap GROUP BY) bound the
  distance from both sides (`wasserstein_cell_bounds`: exact on every cell where one CDF
  stays above the other, a small gap only near crossings; the tails beyond the reference
  range are exact). When the threshold lies outside [lower, upper], the verdict is certain
  and equal to the in-memory one; when it lies inside (rare: the bounds are about a
  thousandth of a std apart) the caller computes the distance exactly (`exact`, a sort in
  DuckDB). The score stored is the middle of the bounds.
- exact value counts (text word counts): the same tests on (value, count) pairs.

Pure functions of NumPy arrays; no SQL here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from monitoring.drift.statistics import (
    DISTANCE_THRESHOLD,
    FEW_VALUES,
    P_VALUE_THRESHOLD,
    SMALL_REFERENCE,
    STD_FLOOR,
    counts_test,
)

CELLS = 4096               # equal-width cells over the reference range (Wasserstein)
REBUILD_LIMIT = 100_000     # current sizes up to this: scipy's ks_2samp on a rebuilt sample
TOLERANCE = 1e-9            # a bound this close to the threshold is not trusted


def boundaries(reference_sorted: np.ndarray) -> np.ndarray:
    """Histogram boundaries: every distinct reference value and the float just below it, so
    that cumulative counts give both `<= u` and `< u` (sorted, distinct)."""
    values = np.unique(reference_sorted)
    below = np.nextafter(values, -np.inf)
    return np.unique(np.concatenate([below, values]))


def cumulative_at(bounds: np.ndarray, counts: dict[float, int]) -> np.ndarray:
    """Current values `<= b` for each boundary, from DuckDB's histogram (bins `(prev, b]`)."""
    per_bin = np.array([counts.get(float(b), 0) for b in bounds], dtype=np.int64)
    return np.cumsum(per_bin)


def le_lt(reference_sorted: np.ndarray, bounds: np.ndarray, cumulative: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct reference values u, and current counts `<= u` and `< u` at each."""
    values = np.unique(reference_sorted)
    le = cumulative[np.searchsorted(bounds, values)]
    below = np.searchsorted(bounds, np.nextafter(values, -np.inf))
    lt = cumulative[below]
    return values, le, lt


def _rebuilt_sample(values: np.ndarray, le: np.ndarray, lt: np.ndarray, n: int) -> np.ndarray:
    """A current sample with the given counts `<= u` and `< u` at each reference value."""
    points, counts = [values[0] - max(1.0, abs(values[0]))], [int(lt[0])]
    for i, value in enumerate(values):
        points.append(value)
        counts.append(int(le[i] - lt[i]))
        if i + 1 < len(values):
            middle = value + (values[i + 1] - value) / 2
            gap = int(lt[i + 1] - le[i])
            if gap and not value < middle < values[i + 1]:
                raise ValueError("no float between two adjacent reference values")
            points.append(middle)
            counts.append(gap)
    points.append(values[-1] + max(1.0, abs(values[-1])))
    counts.append(int(n - le[-1]))
    return np.repeat(np.asarray(points, dtype=float), counts)


def ks_from_counts(reference_sorted: np.ndarray, values: np.ndarray, le: np.ndarray,
                   lt: np.ndarray, n: int) -> tuple[str, float, float, bool]:
    """Two-sample KS of the reference against a current sample known by its counts."""
    m = len(reference_sorted)
    if n <= REBUILD_LIMIT:
        p_value = float(stats.ks_2samp(reference_sorted,
                                       _rebuilt_sample(values, le, lt, n))[1])
    else:
        ref_le = np.searchsorted(reference_sorted, values, side="right") / m
        ref_lt = np.searchsorted(reference_sorted, values, side="left") / m
        diffs = np.concatenate([ref_le - le / n, ref_lt - lt / n])
        d = max(float(np.clip(-diffs.min(), 0, 1)), float(diffs.max()))
        big, small = sorted([float(m), float(n)], reverse=True)
        p_value = float(np.clip(stats.kstwo.sf(d, np.round(big * small / (big + small))),
                                0, 1))
    return "ks", p_value, P_VALUE_THRESHOLD, p_value <= P_VALUE_THRESHOLD


def cell_grid(reference_sorted: np.ndarray) -> tuple[float, float, int]:
    """The equal-width cells the current values are counted in: (start, width, count).

    They span the reference range; values outside it fall in two tail cells (-1 and
    `CELLS`), whose areas are exact from their count and sum."""
    lo, hi = float(reference_sorted[0]), float(reference_sorted[-1])
    return lo, (hi - lo) / CELLS, CELLS


def wasserstein_cell_bounds(reference_sorted: np.ndarray, cells: np.ndarray,
                            counts: np.ndarray, sums: np.ndarray
                            ) -> tuple[float, float, float]:
    """(lower, estimate, upper) of the first Wasserstein distance (not normed) from the count
    and sum of the current values in each cell of `cell_grid` (cell -1: below the reference
    range, `CELLS`: at or above its top).

    On a cell [a, b) both CDFs are known at the ends, and both integrals are exact: the
    reference's from its values, the current one's as (C w + k b - S) / n (C values before
    the cell, k in it, summing to S). Where one CDF stays above the other over the whole cell,
    the area between them is the difference of the integrals, exactly; only cells where their
    ranges overlap (near a crossing) leave a gap, at most the cell's width times the larger
    spread, and a lower bound of the integrals' difference.
    """
    lo, width, n_cells = cell_grid(reference_sorted)
    m = len(reference_sorted)
    n = float(counts.sum())
    k = np.zeros(n_cells + 2)
    total = np.zeros(n_cells + 2)
    np.add.at(k, cells + 1, counts)
    np.add.at(total, cells + 1, sums)
    hi = lo + n_cells * width
    tails = (k[0] * lo - total[0]) + (total[-1] - k[-1] * hi)
    below = k[0]
    k, total = k[1:-1], total[1:-1]
    a = lo + width * np.arange(n_cells)
    b = a + width
    before = below + np.concatenate([[0.0], np.cumsum(k)[:-1]])
    cur_low, cur_high = before / n, (before + k) / n
    cur_area = (before * width + k * b - total) / n
    prefix = np.concatenate([[0.0], np.cumsum(reference_sorted)])
    at_a = np.searchsorted(reference_sorted, a, side="right")
    below_b = np.searchsorted(reference_sorted, b, side="left")
    inside = np.maximum(below_b - at_a, 0)
    ref_area = (at_a * width + inside * b - (prefix[below_b] - prefix[at_a])) / m
    ref_low, ref_high = at_a / m, below_b / m
    apart = (cur_high <= ref_low) | (ref_high <= cur_low)
    gap = np.abs(ref_area - cur_area)
    spread = np.maximum(ref_high - cur_low, cur_high - ref_low) * width
    upper = np.where(apart, gap, np.maximum(spread, gap))
    exact_tails = tails / n
    lower_sum, upper_sum = float(gap.sum()) + exact_tails, float(upper.sum()) + exact_tails
    return lower_sum, (lower_sum + upper_sum) / 2, upper_sum


def wasserstein_verdict(reference_sorted: np.ndarray, bounds: tuple[float, float, float],
                        exact: Callable[[], float]) -> tuple[str, float, float, bool]:
    """The normed-Wasserstein verdict from bounds; `exact()` only when they straddle it."""
    norm = max(float(np.std(reference_sorted)), STD_FLOOR)
    lower, estimate, upper = (b / norm for b in bounds)
    if lower >= DISTANCE_THRESHOLD + TOLERANCE:
        return "wasserstein", estimate, DISTANCE_THRESHOLD, True
    if upper < DISTANCE_THRESHOLD - TOLERANCE:
        return "wasserstein", estimate, DISTANCE_THRESHOLD, False
    score = exact() / norm
    return "wasserstein", score, DISTANCE_THRESHOLD, score >= DISTANCE_THRESHOLD


def few_values(reference_sorted: np.ndarray, new_distinct: int) -> bool:
    """Evidently's rule: at most 5 distinct values in reference and current together."""
    return len(np.unique(reference_sorted)) + new_distinct <= FEW_VALUES


def numeric_test_counts(reference_sorted: np.ndarray, values: np.ndarray, counts: np.ndarray
                        ) -> tuple[str, float, float, bool]:
    """`statistics.numeric_test` on a current sample given as distinct values and counts."""
    ref_values = np.unique(reference_sorted)
    new = int((~np.isin(values, ref_values)).sum())
    if few_values(reference_sorted, new):
        ref_counts = dict(zip(*np.unique(reference_sorted, return_counts=True), strict=True))
        return counts_test(ref_counts, dict(zip(values, counts.astype(int), strict=True)))
    n = int(counts.sum())
    order = np.argsort(values)
    values, counts = values[order], counts[order]
    cumulative = np.cumsum(counts)
    at = np.searchsorted(values, ref_values, side="right")
    le = np.where(at > 0, cumulative[np.maximum(at - 1, 0)], 0)
    before = np.searchsorted(values, ref_values, side="left")
    lt = np.where(before > 0, cumulative[np.maximum(before - 1, 0)], 0)
    if len(reference_sorted) <= SMALL_REFERENCE:
        return ks_from_counts(reference_sorted, ref_values, le, lt, n)
    norm = max(float(np.std(reference_sorted)), STD_FLOOR)
    score = float(stats.wasserstein_distance(reference_sorted, values, v_weights=counts)) / norm
    return "wasserstein", score, DISTANCE_THRESHOLD, score >= DISTANCE_THRESHOLD
