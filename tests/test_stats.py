"""workbench.stats against scipy and against published worked examples.

scipy and numpy are test-only: the module under test is pure Python.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats as sp

from workbench import stats
from workbench.agreement import cohen_kappa, krippendorff_alpha
from workbench.stats import (
    Interval,
    bootstrap_mean,
    compare_paired,
    sign_test,
    wilcoxon_signed_rank,
    wilson_interval,
)

N = None


def scipy_wilcoxon_p(d: list[float], **kwargs: object) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about ties and zeros; we know.
        return float(sp.wilcoxon(d, **kwargs).pvalue)


def test_stats_module_imports_no_numpy_or_scipy() -> None:
    code = ("import sys, workbench.stats, workbench.agreement; "
            "print([m for m in ('numpy', 'scipy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    rng = random.Random(1)
    data = [rng.gauss(0, 1) for _ in range(30)]
    assert bootstrap_mean(data, seed=7) == bootstrap_mean(data, seed=7)
    assert bootstrap_mean(data, seed=7) != bootstrap_mean(data, seed=8)


def test_bootstrap_edge_cases() -> None:
    assert bootstrap_mean([3.5]) == Interval(3.5, 3.5, 3.5)
    assert bootstrap_mean([0.1] * 7) == Interval(0.1, 0.1, 0.1)
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean([1.0, math.nan])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean([1.0, 2.0], confidence=1.0)


@pytest.mark.parametrize("seed", range(10))
def test_bootstrap_interval_properties(seed: int) -> None:
    rng = random.Random(seed)
    data = [rng.choice([0, 0.5, 1]) * rng.random() for _ in range(rng.randint(2, 40))]
    mean = sum(data) / len(data)
    narrow, usual, wide = (bootstrap_mean(data, confidence=c, seed=seed) for c in (0.8, 0.95, 0.99))
    assert usual.mean == pytest.approx(mean)
    assert min(data) <= usual.low <= usual.mean <= usual.high <= max(data)
    # Same seed, same resampled means: a higher confidence can only widen the interval.
    assert wide.low <= usual.low <= narrow.low <= narrow.high <= usual.high <= wide.high


def test_bootstrap_agrees_with_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(3)
    data = rng.exponential(2.0, size=40)
    ours = bootstrap_mean(data.tolist(), resamples=10_000, seed=3)
    theirs = sp.bootstrap(
        (data,), np.mean, method="percentile", n_resamples=10_000, rng=rng
    ).confidence_interval
    # Independent Monte Carlo draws: agree to a small fraction of the standard error.
    se = data.std(ddof=1) / math.sqrt(len(data))
    assert ours.low == pytest.approx(theirs.low, abs=0.15 * se)
    assert ours.high == pytest.approx(theirs.high, abs=0.15 * se)


def test_quantile_matches_numpy_linear_interpolation() -> None:
    rng = random.Random(0)
    for size in (1, 2, 3, 10, 101):
        ordered = sorted(rng.random() for _ in range(size))
        for q in (0.0, 0.025, 0.5, 0.975, 1.0):
            assert stats._quantile(ordered, q) == pytest.approx(np.quantile(ordered, q))


# --- sign test, Wilson interval ------------------------------------------------------------


def test_sign_test_matches_scipy_binomtest() -> None:
    for n in [*range(1, 41), 100, 257, 1000]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            assert sign_test(k, n - k) == pytest.approx(sp.binomtest(k, n).pvalue, rel=1e-9)
    assert sign_test(0, 0) == 1.0


def test_wilson_interval_matches_scipy() -> None:
    for k, n in [(0, 1), (0, 10), (3, 10), (14, 17), (17, 17), (50, 100), (1, 1000)]:
        for confidence in (0.9, 0.95, 0.99):
            ours = wilson_interval(k, n, confidence=confidence)
            ci = sp.binomtest(k, n).proportion_ci(confidence, method="wilson")
            assert ours.mean == k / n
            assert (ours.low, ours.high) == pytest.approx((ci.low, ci.high), abs=1e-12)


# --- Wilcoxon signed-rank ------------------------------------------------------------------


def _differences(rng: random.Random, n: int, kind: str) -> list[float]:
    if kind == "continuous":  # no ties, no zeros
        return [rng.gauss(0.3, 1.0) for _ in range(n)]
    if kind == "scores":  # rubric scores 1-5: many ties and zeros
        return [float(rng.randint(1, 5) - rng.randint(1, 5)) for _ in range(n)]
    return [round(rng.gauss(0.2, 1.0), 1) for _ in range(n)]  # "rounded": some ties


@pytest.mark.parametrize("kind", ["continuous", "scores", "rounded"])
def test_wilcoxon_matches_scipy_defaults(kind: str) -> None:
    rng = random.Random(kind)
    # Sizes straddle scipy's switches: with ties or zeros, a full permutation test up to 13
    # values (slow in scipy, so kept small here; 13 itself is checked below) and the normal
    # approximation above; without them, the exact distribution up to 50.
    for n in [1, 2, 3, 5, 7, 8, 14, 20, 25, 26, 40, 50, 51, 80, 200] * 3:
        d = _differences(rng, n, kind)
        if not any(d):
            continue  # scipy: p = 1 up to 13 values and NaN beyond; ours is always 1.
        assert wilcoxon_signed_rank(d) == pytest.approx(scipy_wilcoxon_p(d), rel=1e-9, abs=1e-15)
        # The continuity correction only touches the normal approximation.
        corrected = wilcoxon_signed_rank(d, correction=True)
        if n > 50 or (n > 13 and kind != "continuous"):
            expected = scipy_wilcoxon_p(d, correction=True)
            assert corrected == pytest.approx(expected, rel=1e-9, abs=1e-15)
        else:
            assert corrected == wilcoxon_signed_rank(d)


def test_wilcoxon_switches_at_scipys_boundaries() -> None:
    rng = random.Random(5)
    tied13 = _differences(rng, 13, "scores")  # permutation distribution
    tied14 = _differences(rng, 14, "scores")  # normal approximation
    untied50 = _differences(rng, 50, "continuous")  # exact distribution
    for d in (tied13, tied14, untied50):
        assert wilcoxon_signed_rank(d) == pytest.approx(scipy_wilcoxon_p(d), rel=1e-9)
    assert wilcoxon_signed_rank(tied14) != wilcoxon_signed_rank(tied14, correction=True)


def test_wilcoxon_drops_zeros_and_handles_all_zero() -> None:
    d = [0.0, 0.0, 1.0, -2.0, 3.0, 4.0, 5.0, 0.0, 6.0, 7.0, 8.0, 9.0, -10.0, 11.0, 12.0]
    assert wilcoxon_signed_rank(d) == pytest.approx(scipy_wilcoxon_p(d), rel=1e-9)
    assert wilcoxon_signed_rank([0.0] * 5) == 1.0
    assert wilcoxon_signed_rank([0.0] * 30) == 1.0
    with pytest.raises(ValueError):
        wilcoxon_signed_rank([])


# --- paired comparison ---------------------------------------------------------------------


def test_compare_paired_numbers_match_scipy() -> None:
    rng = random.Random(11)
    for n in (3, 8, 30, 60):
        a = [float(rng.randint(1, 5)) for _ in range(n)]
        b = [min(5.0, x + rng.choice([-1, 0, 0, 1, 1, 2])) for x in a]
        result = compare_paired(a, b)
        d = [y - x for x, y in zip(a, b, strict=True)]
        wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
        assert (result.n, result.wins, result.ties, result.losses) == (
            n,
            wins,
            n - wins - losses,
            losses,
        )
        assert result.sign_p == pytest.approx(sp.binomtest(wins, wins + losses).pvalue)
        if any(d):
            assert result.wilcoxon_p == pytest.approx(scipy_wilcoxon_p(b, y=a), rel=1e-9)
        assert result.mean_difference == bootstrap_mean(d)
        assert result.win_rate == wilson_interval(wins, wins + losses)


def test_sentence_when_significant() -> None:
    result = compare_paired([0] * 20, [1] * 14 + [0] * 3 + [-1] * 3)
    assert result.significant and result.more_cases_needed is None
    assert result.sentence() == (
        "B beats A on 14 of 20 cases (3 ties); win rate 0.82 [0.59, 0.94]; "
        "sign test p = 0.013: unlikely to be chance."
    )
    assert result.sentence("v1", "v2").startswith("v2 beats v1 on 14 of 20 cases")


def test_more_cases_needed_when_not_significant() -> None:
    # 9 wins, 6 losses, 1 tie: rate 0.6 needs (1.96 * 0.5 / 0.1) ** 2 = 96.04 -> 97 untied
    # cases, 82 more; one case in 16 ties, so 82 * 16 / 15 = 87.5 -> 88 more paired cases.
    result = compare_paired([0] * 16, [1] * 9 + [0] + [-1] * 6)
    assert not result.significant
    assert result.more_cases_needed == 88
    assert result.sentence() == (
        "B beats A on 9 of 16 cases (1 tie); win rate 0.60 [0.36, 0.80]; sign test p = 0.61: "
        "not distinguishable from chance; about 88 more paired cases would be needed "
        "if the difference holds."
    )
    # Sanity: at that size the same win rate is borderline by the exact test (the normal
    # approximation is a little optimistic, hence "about").
    assert 0.04 < sign_test(58, 39) < 0.1


def test_no_difference_to_detect() -> None:
    even = compare_paired([0] * 16, [1] * 7 + [0] * 2 + [-1] * 7)
    assert even.more_cases_needed is None and even.sign_p == 1.0
    assert even.sentence().endswith("not distinguishable from chance; no difference to detect.")
    ties = compare_paired([2, 3], [2, 3])
    assert ties.win_rate is None and ties.more_cases_needed is None
    assert ties.sentence() == "B and A tie on all 2 cases; no difference to detect."


def test_compare_paired_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="length"):
        compare_paired([1, 2], [1])
    with pytest.raises(ValueError):
        compare_paired([], [])


# --- Cohen's kappa -------------------------------------------------------------------------


def test_cohen_kappa_wikipedia_example() -> None:
    # Wikipedia, "Cohen's kappa", simple example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    r1 = ["yes"] * 25 + ["no"] * 25
    r2 = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(r1, r2) == pytest.approx(0.4)
    # Items with a missing rating are skipped, whichever rater lacks it.
    assert cohen_kappa([*r1, None, "yes"], [*r2, "no", None]) == pytest.approx(0.4)


def test_weighted_kappa_by_hand() -> None:
    # Pairs (1,1) (1,2) (2,2) (3,2); row totals 2,1,1 and column totals 1,3,0 over n = 4.
    # Linear: observed 2/4, expected (2*3 + 1*1 + 1*(2+3)) / 16 = 12/16 -> 1 - 0.5/0.75 = 1/3.
    # Quadratic: observed 2/4, expected (2*3 + 1*1 + 1*(4+3)) / 16 = 14/16 -> 3/7.
    # Unweighted: po = 1/2, pe = (2*1 + 1*3) / 16 = 5/16 -> (1/2 - 5/16) / (11/16) = 3/11.
    r1, r2 = [1, 1, 2, 3], [1, 2, 2, 2]
    assert cohen_kappa(r1, r2) == pytest.approx(3 / 11)
    assert cohen_kappa(r1, r2, weights="linear") == pytest.approx(1 / 3)
    assert cohen_kappa(r1, r2, weights="quadratic") == pytest.approx(3 / 7)


def _sklearn_style_kappa(r1: list[int], r2: list[int], weights: str | None) -> float:
    """scikit-learn's cohen_kappa_score formula, written with numpy."""
    labels = sorted(set(r1) | set(r2))
    index = {c: i for i, c in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)))
    for x, y in zip(r1, r2, strict=True):
        confusion[index[x], index[y]] += 1
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    i, j = np.indices(confusion.shape)
    w = {None: (i != j) * 1.0, "linear": np.abs(i - j), "quadratic": (i - j) ** 2}[weights]
    return float(1 - (w * confusion).sum() / (w * expected).sum())


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn_formula(weights: str | None) -> None:
    rng = random.Random(weights)
    for _ in range(20):
        r1 = [rng.randint(1, 5) for _ in range(rng.randint(5, 60))]
        r2 = [min(5, max(1, x + rng.choice([-2, -1, 0, 0, 1]))) for x in r1]
        expected = _sklearn_style_kappa(r1, r2, weights)
        assert cohen_kappa(r1, r2, weights=weights) == pytest.approx(expected)  # type: ignore[arg-type]


def test_kappa_edge_cases() -> None:
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))
    # An explicit scale can hold unused points; a rating outside it is an error.
    assert cohen_kappa([1, 3], [1, 3], weights="linear", categories=[1, 2, 3, 4, 5]) == 1.0
    with pytest.raises(ValueError, match="categories"):
        cohen_kappa([1, 6], [1, 2], categories=[1, 2, 3])
    assert cohen_kappa(["x", 1, "x"], ["x", 1, 1]) == pytest.approx(0.4)  # unordered labels
    with pytest.raises(ValueError, match="ordered"):
        cohen_kappa(["x", 1], ["x", 1], weights="linear")
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both raters"):
        cohen_kappa([1, None], [None, 2])
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa([1, 2], [1])


# --- Krippendorff's alpha ------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders x 12 units
# example with missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849,
# ratio 0.797 (the ordinal and ratio figures are also asserted by the `krippendorff` package's
# own tests on this same matrix).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
# Wikipedia, "Krippendorff's alpha", computational example (3 coders x 15 units): nominal
# 0.691 is published there; the interval value 0.810845 comes from the `krippendorff`
# package's tests, cross-checked below by the independent implementation.
WIKIPEDIA = [
    [N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
    [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
    [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4],
]


def _units(coders: list[list[int | None]]) -> list[list[int | None]]:
    return [list(unit) for unit in zip(*coders, strict=True)]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_krippendorff_2011(level: str, published: float) -> None:
    alpha = krippendorff_alpha(_units(KRIPPENDORFF_2011), level=level)  # type: ignore[arg-type]
    assert round(alpha, 3) == published


def test_alpha_wikipedia_example() -> None:
    assert round(krippendorff_alpha(_units(WIKIPEDIA)), 6) == 0.691358
    assert round(krippendorff_alpha(_units(WIKIPEDIA), level="interval"), 6) == 0.810845


def _pairwise_alpha(units: list[list[int | None]], level: str) -> float:
    """Alpha from its definition over pairs of values, without a coincidence matrix.

    D_o averages the disagreement of ordered pairs within each unit (weighted 1 / (m_u - 1));
    D_e averages it over all ordered pairs of pairable values. Ordinal distance is the
    difference of mid-ranks in the pooled pairable values, which equals Krippendorff's
    ordinal metric.
    """
    pairable = [[v for v in u if v is not None] for u in units]
    pairable = [u for u in pairable if len(u) >= 2]
    pooled = np.array([v for u in pairable for v in u], dtype=float)
    if level == "ordinal":
        midrank = dict(zip(pooled.tolist(), sp.rankdata(pooled).tolist(), strict=True))
        pairable = [[midrank[float(v)] for v in u] for u in pairable]
        pooled = np.array([v for u in pairable for v in u], dtype=float)

    def delta(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x != y) * 1.0 if level == "nominal" else (x - y) ** 2

    n = len(pooled)
    observed = sum(
        delta(np.array(u)[:, None], np.array(u)[None, :]).sum() / (len(u) - 1) for u in pairable
    )
    expected = delta(pooled[:, None], pooled[None, :]).sum() / (n - 1)
    return float(1 - observed / expected)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_matches_pairwise_definition(level: str) -> None:
    rng = random.Random(level)
    for _ in range(15):
        truth = [rng.randint(1, 5) for _ in range(rng.randint(3, 25))]
        coders = rng.randint(2, 5)
        units = [
            [
                N if rng.random() < 0.25 else min(5, max(1, t + rng.choice([-1, 0, 0, 1])))
                for _ in range(coders)
            ]
            for t in truth
        ]
        if sum(sum(v is not None for v in u) >= 2 for u in units) == 0:
            continue
        values = {v for u in units for v in u if v is not None}
        if len(values) < 2:
            continue
        expected = _pairwise_alpha(units, level)
        assert krippendorff_alpha(units, level=level) == pytest.approx(expected)  # type: ignore[arg-type]


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha([["a", "a"], ["b", "b", None]]) == 1.0
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match="at least one unit"):
        krippendorff_alpha([[1, None], [None, 2]])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([[1, 2]], level="circular")  # type: ignore[arg-type]
