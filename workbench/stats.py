"""Statistics for scoring prompt variants: bootstrap intervals and paired tests (rater
agreement is in :mod:`workbench.agreement`).

Pure Python on purpose: the engine stays light, so nothing here imports numpy or scipy.
The tests check every number against scipy and against published worked examples.

Paired comparisons are always "B against A": a *win* is a case where B scores higher than A,
and differences are ``b - a``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import NamedTuple

# scipy.stats.wilcoxon (1.15+, method="auto"): exact null distribution up to this many
# differences (zeros included) when there are no ties and no zeros...
_EXACT_MAX_N = 50
# ...and, with ties or zeros, a complete permutation test (every sign flip) up to this many.
_PERMUTATION_MAX_N = 13


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval for the mean.

    Draws ``resamples`` resamples with replacement from ``random.Random(seed)``, so the result
    is the same for the same inputs and seed. The bounds are the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the resampled means, interpolated linearly (numpy's
    default quantile method).

    Args:
        values: The observations; at least one, all finite.
        confidence: Coverage of the interval, strictly between 0 and 1.
        resamples: Number of bootstrap resamples.
        seed: Seed for the resampling.

    Returns:
        The sample mean and its interval. With one value (or all values equal) the interval
        collapses to ``low == high == mean``.

    Raises:
        ValueError: ``values`` is empty or holds a non-finite number, or an argument is out of
            range. An empty list has no mean, so it is an error rather than a silent ``None``.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("bootstrap_mean needs at least one value")
    if not all(math.isfinite(v) for v in data):
        raise ValueError("bootstrap_mean needs finite values (no NaN or infinity)")
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if min(data) == max(data):
        return Interval(data[0], data[0], data[0])
    n = len(data)
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(data, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    return Interval(math.fsum(data) / n, _quantile(means, tail), _quantile(means, 1 - tail))


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Raises:
        ValueError: ``trials`` is not positive or ``successes`` is outside ``[0, trials]``.
    """
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    z = _critical_z(confidence)
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: the binomial test of ``wins`` out of ``wins + losses`` at 1/2.

    Ties must already be dropped. Matches ``scipy.stats.binomtest(wins, wins + losses).pvalue``;
    with no untied pairs there is no evidence either way and the p-value is 1.
    """
    if wins < 0 or losses < 0:
        raise ValueError("wins and losses must be non-negative")
    n = wins + losses
    k = min(wins, losses)
    if 2 * k == n:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    # Integer arithmetic until the one correctly rounded division.
    return min(1.0, 2 * tail / (1 << n))


def wilcoxon_signed_rank(differences: Sequence[float], *, correction: bool = False) -> float:
    """Two-sided Wilcoxon signed-rank p-value, matching ``scipy.stats.wilcoxon(differences)``.

    Follows scipy's defaults (1.15 and later) for the same inputs:

    * zero differences are dropped (``zero_method="wilcox"``); tied absolute differences get
      average ranks;
    * with at most 50 differences and no ties or zeros: the exact null distribution;
    * with ties or zeros and at most 13 differences (zeros counted): the exact permutation
      distribution over every sign flip, which is what scipy's permutation test enumerates;
    * otherwise the normal approximation with the tie-corrected variance, with a continuity
      correction only when ``correction`` is true (scipy's default is ``False``).

    If every difference is zero there is nothing to test and the p-value is 1 (scipy gives 1
    for up to 13 differences and NaN beyond).

    Raises:
        ValueError: ``differences`` is empty or holds a non-finite number.
    """
    d = [float(x) for x in differences]
    if not d:
        raise ValueError("wilcoxon_signed_rank needs at least one difference")
    if not all(math.isfinite(x) for x in d):
        raise ValueError("wilcoxon_signed_rank needs finite differences")
    nonzero = [x for x in d if x != 0]
    if not nonzero:
        return 1.0
    ranks, tie_sizes = _average_ranks([abs(x) for x in nonzero])
    untied = all(size == 1 for size in tie_sizes) and len(nonzero) == len(d)
    if len(d) <= _EXACT_MAX_N and (untied or len(d) <= _PERMUTATION_MAX_N):
        # Average ranks are multiples of 1/2, so doubled ranks keep the distribution integral.
        doubled = [round(2 * r) for r in ranks]
        observed = sum(r for r, x in zip(doubled, nonzero, strict=True) if x > 0)
        counts = _rank_sum_counts(tuple(sorted(doubled)))
        below, above = sum(counts[: observed + 1]), sum(counts[observed:])
        return min(1.0, 2 * min(below, above) / (1 << len(doubled)))
    n = len(nonzero)
    r_plus = math.fsum(r for r, x in zip(ranks, nonzero, strict=True) if x > 0)
    tie_term = sum(t**3 - t for t in tie_sizes) / 2
    se = math.sqrt((n * (n + 1) * (2 * n + 1) - tie_term) / 24)
    z = (r_plus - n * (n + 1) / 4) / se
    if correction and z != 0:
        z -= math.copysign(0.5 / se, z)
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Variant B against variant A on the same cases (see `compare_paired`).

    Attributes:
        n: Number of paired cases.
        wins: Cases where B scored higher than A.
        ties: Cases where they scored the same.
        losses: Cases where B scored lower than A.
        win_rate: ``wins / (wins + losses)`` with its Wilson interval (``mean`` is the rate);
            ``None`` when every case is a tie.
        sign_p: Exact two-sided sign-test p-value, ties dropped.
        wilcoxon_p: Two-sided Wilcoxon signed-rank p-value (see `wilcoxon_signed_rank`).
        mean_difference: Mean of ``b - a`` with its percentile bootstrap interval.
        more_cases_needed: Rough number of extra paired cases that would make the observed
            win rate significant; ``None`` when already significant or when there is no
            difference to detect (win rate exactly 1/2, or all ties).
        confidence: The confidence level used throughout; significance is
            ``sign_p < 1 - confidence``.
    """

    n: int
    wins: int
    ties: int
    losses: int
    win_rate: Interval | None
    sign_p: float
    wilcoxon_p: float
    mean_difference: Interval
    more_cases_needed: int | None
    confidence: float

    @property
    def significant(self) -> bool:
        """Whether the sign test rejects "no difference" at ``1 - confidence``."""
        return self.sign_p < 1 - self.confidence

    def sentence(self, a: str = "A", b: str = "B") -> str:
        """A plain-English summary, naming the variants ``a`` and ``b``."""
        if self.win_rate is None:
            return f"{b} and {a} tie on all {self.n} cases; no difference to detect."
        rate = self.win_rate
        ties = {0: "no ties", 1: "1 tie"}.get(self.ties, f"{self.ties} ties")
        head = (
            f"{b} beats {a} on {self.wins} of {self.n} cases ({ties}); "
            f"win rate {rate.mean:.2f} [{rate.low:.2f}, {rate.high:.2f}]; "
            f"sign test {_format_p(self.sign_p)}: "
        )
        if self.significant:
            return head + "unlikely to be chance."
        if self.more_cases_needed is None:
            return head + "not distinguishable from chance; no difference to detect."
        more = self.more_cases_needed
        return head + (
            f"not distinguishable from chance; about {more} more paired "
            f"case{'' if more == 1 else 's'} would be needed if the difference holds."
        )


def compare_paired(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Compare two variants' scores on the same cases, B against A.

    ``more_cases_needed`` uses the normal approximation to the sign test: the observed win
    rate ``p`` becomes significant once the number of untied cases ``m`` satisfies
    ``|p - 1/2| >= z * 0.5 / sqrt(m)``. The shortfall in untied cases (at least one) is scaled
    up by the observed share of ties, since ties will keep turning up at the same rate.

    Args:
        a: Scores of variant A, one per case.
        b: Scores of variant B on the same cases, in the same order.
        confidence: Confidence level for the intervals and the significance threshold.
        resamples: Bootstrap resamples for the mean difference.
        seed: Seed for the bootstrap.

    Raises:
        ValueError: The sequences are empty, differ in length, or hold non-finite scores.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    mean_difference = bootstrap_mean(diffs, confidence=confidence, resamples=resamples, seed=seed)
    wins = sum(1 for x in diffs if x > 0)
    losses = sum(1 for x in diffs if x < 0)
    ties = len(diffs) - wins - losses
    untied = wins + losses
    win_rate = wilson_interval(wins, untied, confidence=confidence) if untied else None
    sign_p = sign_test(wins, losses)
    more = None
    if sign_p >= 1 - confidence and untied and 2 * wins != untied:
        distance = abs(wins / untied - 0.5)
        needed = math.ceil((_critical_z(confidence) * 0.5 / distance) ** 2)
        more = -(-max(needed - untied, 1) * len(diffs) // untied)  # integer ceiling
    return PairedComparison(
        n=len(diffs),
        wins=wins,
        ties=ties,
        losses=losses,
        win_rate=win_rate,
        sign_p=sign_p,
        wilcoxon_p=wilcoxon_signed_rank(diffs),
        mean_difference=mean_difference,
        more_cases_needed=more,
        confidence=confidence,
    )


def _average_ranks(values: list[float]) -> tuple[list[float], list[int]]:
    """Ranks 1..n in input order (ties get the average rank), and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    sizes: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        sizes.append(end - start + 1)
        start = end + 1
    return ranks, sizes


@lru_cache(maxsize=64)
def _rank_sum_counts(ranks: tuple[int, ...]) -> tuple[int, ...]:
    """How many of the 2**n sign assignments give each sum of the positively signed ranks."""
    counts = [1]
    for rank in ranks:
        grown = counts + [0] * rank
        for total, ways in enumerate(counts):
            grown[total + rank] += ways
        counts = grown
    return tuple(counts)


def _quantile(ordered: list[float], q: float) -> float:
    """Linearly interpolated quantile of sorted data (numpy's default method)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def _critical_z(confidence: float) -> float:
    """The two-sided normal critical value, 1.96 for 95%."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


# --- pass rates: percentiles and paired proportions ------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    ordered = sorted(values)
    return _quantile(ordered, q / 100) if ordered else None


def square_and_add(
    p1: float, ci1: tuple[float, float], p2: float, ci2: tuple[float, float], phi: float = 0.0
) -> tuple[float, float]:
    """Newcombe's square-and-add interval for ``p1 - p2`` from each proportion's own
    interval; ``phi`` is the correlation of paired outcomes (0 for independent samples)."""
    (l1, u1), (l2, u2) = ci1, ci2
    d = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, d - math.sqrt(max(below, 0.0))), min(1.0, d + math.sqrt(max(above, 0.0)))


def paired_difference(both: int, a_only: int, b_only: int, neither: int) -> tuple[float, float, float]:
    """Difference of two paired pass rates (``b`` minus ``a``) with Newcombe's hybrid
    score interval for paired data (Newcombe, Statistics in Medicine 1998;17:2635-50,
    method 10): Wilson intervals combined by square-and-add, with the correlation of
    the pairs (continuity-corrected). It stays inside [-1, 1] and behaves at small
    samples and at pass rates near 0 or 1."""
    n = both + a_only + b_only + neither
    if n == 0:
        return 0.0, -1.0, 1.0
    pb, pa = (both + b_only) / n, (both + a_only) / n
    # The 2x2 table with b first: r both pass, s only b, t only a, u neither.
    r, s, t, u = both, b_only, a_only, neither
    denominator = (r + s) * (t + u) * (r + t) * (s + u)
    product = r * u - s * t
    if product > 0:
        product = max(product - n / 2, 0.0)
    phi = product / math.sqrt(denominator) if denominator else 0.0
    wb, wa = wilson_interval(both + b_only, n), wilson_interval(both + a_only, n)
    low, high = square_and_add(pb, (wb.low, wb.high), pa, (wa.low, wa.high), phi)
    return pb - pa, low, high
