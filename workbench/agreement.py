"""How much reviewers agree: Cohen's kappa for two raters, Krippendorff's alpha for any
number, with missing scores.

Pure Python like :mod:`workbench.stats`; the tests check both against published worked
examples.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

Weights = Literal["linear", "quadratic"]
Level = Literal["nominal", "ordinal", "interval", "ratio"]


def cohen_kappa(
    r1: Sequence[Hashable | None],
    r2: Sequence[Hashable | None],
    *,
    weights: Weights | None = None,
    categories: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's kappa for two raters over the same items, optionally weighted.

    ``kappa = 1 - sum(w * observed) / sum(w * expected)``, as in scikit-learn's
    ``cohen_kappa_score``: weights are 0/1 (unweighted), ``|i - j|`` (linear) or
    ``(i - j) ** 2`` (quadratic), where ``i`` and ``j`` are positions in the ordered category
    list, not the rating values themselves.

    Args:
        r1: The first rater's labels; ``None`` marks a missing rating.
        r2: The second rater's labels for the same items.
        weights: ``None``, ``"linear"`` or ``"quadratic"``.
        categories: The ordered categories (for example the full 1-5 scale). Defaults to the
            sorted labels that occur. Pass it for weighted kappa when some scale points are
            never used or when labels do not sort in scale order (``"bad" < "good" < "ok"``).

    Returns:
        Kappa in ``[-1, 1]``, or NaN when it is undefined (both raters used one and the same
        category throughout, so no disagreement was possible), as scikit-learn does.

    Raises:
        ValueError: Lengths differ, no item has both ratings, a label is not in
            ``categories``, weighted labels cannot be ordered, or ``weights`` is unknown.
    """
    if len(r1) != len(r2):
        raise ValueError(f"raters cover different numbers of items: {len(r1)} and {len(r2)}")
    pairs = [(x, y) for x, y in zip(r1, r2, strict=True) if x is not None and y is not None]
    if not pairs:
        raise ValueError("cohen_kappa needs at least one item rated by both raters")
    cats = _ordered_categories([v for pair in pairs for v in pair], categories, weights)
    index = {c: i for i, c in enumerate(cats)}
    table = [[0] * len(cats) for _ in cats]
    for x, y in pairs:
        table[index[x]][index[y]] += 1
    rows = [sum(row) for row in table]
    cols = [sum(row[j] for row in table) for j in range(len(cats))]
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"unknown weights: {weights!r}")
    # Disagreement weight of each off-diagonal cell (the diagonal weighs 0).
    weight = {
        (i, j): {None: 1, "linear": abs(i - j), "quadratic": (i - j) * (i - j)}[weights]
        for i in range(len(cats))
        for j in range(len(cats))
        if i != j
    }
    observed = sum(w * table[i][j] for (i, j), w in weight.items())
    expected = sum(w * rows[i] * cols[j] for (i, j), w in weight.items()) / len(pairs)
    if expected == 0:
        return math.nan
    return 1 - observed / expected


def krippendorff_alpha(
    units: Sequence[Sequence[Hashable | None]], *, level: Level = "nominal"
) -> float:
    """Krippendorff's alpha for any number of raters, with missing ratings.

    Built from the coincidence matrix as in Krippendorff (2011), "Computing Krippendorff's
    Alpha-Reliability": ``alpha = 1 - D_o / D_e``. Units with fewer than two ratings are not
    pairable and are left out.

    Args:
        units: One list per unit (item) holding each rater's rating, ``None`` if missing.
        level: ``"nominal"`` (any hashable labels), ``"ordinal"`` (labels sorted with ``<``),
            ``"interval"`` or ``"ratio"`` (numbers).

    Returns:
        Alpha (1 is perfect agreement, 0 is chance), or NaN when it is undefined because the
        pairable ratings hold a single value.

    Raises:
        ValueError: No unit has two ratings, or ``level`` is unknown.
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"unknown level of measurement: {level!r}")
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [unit for unit in pairable if len(unit) >= 2]
    if not pairable:
        raise ValueError("krippendorff_alpha needs at least one unit rated at least twice")
    coincidences: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in pairable:
        counts = Counter(unit)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                coincidences[c, k] += n_c * (n_k - (c == k)) / (len(unit) - 1)
    totals: Counter[Hashable] = Counter(v for unit in pairable for v in unit)
    values = list(totals) if level == "nominal" else sorted(totals)  # type: ignore[type-var]
    delta = _distance(level, values, totals)
    n = sum(totals.values())
    observed = math.fsum(o * delta(c, k) for (c, k), o in coincidences.items())
    expected = math.fsum(totals[c] * totals[k] * delta(c, k) for c in values for k in values)
    if expected == 0:
        return math.nan
    return 1 - (n - 1) * observed / expected


def _distance(level: Level, values: list[Any], totals: Counter[Any]) -> Callable[[Any, Any], float]:
    """The squared difference function delta^2(c, k) for a level of measurement."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    if level == "interval":
        return lambda c, k: float(c - k) ** 2
    if level == "ratio":
        return lambda c, k: 0.0 if c + k == 0 else ((c - k) / (c + k)) ** 2
    # Ordinal: the distance between two values is the count of pairable values from one to the
    # other, less half of each end -- the difference of their mid-ranks.
    midrank: dict[Any, float] = {}
    below = 0
    for v in values:
        midrank[v] = below + (totals[v] + 1) / 2
        below += totals[v]
    return lambda c, k: (midrank[c] - midrank[k]) ** 2


def _ordered_categories(
    labels: list[Hashable], categories: Sequence[Hashable] | None, weights: Weights | None
) -> list[Hashable]:
    if categories is None:
        try:
            return sorted(set(labels))  # type: ignore[type-var]
        except TypeError as exc:
            if weights is None:  # order is irrelevant without weights
                return list(dict.fromkeys(labels))
            raise ValueError("labels cannot be ordered; pass categories=[...]") from exc
    cats = list(categories)
    if len(set(cats)) != len(cats):
        raise ValueError("categories must be distinct")
    unknown = set(labels) - set(cats)
    if unknown:
        raise ValueError(f"ratings not among the categories: {sorted(map(repr, unknown))}")
    return cats
