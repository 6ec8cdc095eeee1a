"""Is a difference between two runs real? Welch's t-test on per-batch timings, a paired one on scores.

Every generate call is one sample of a run's speed, so a run of 20 batches gives 20 docs/s values.
Welch's t-test compares their means without assuming equal variances (a batch-32 run is steadier than a
batch-1 run). Quality is scored per document, and both runs scored the same documents, so ROUGE gets
the paired test: each document's own difficulty cancels out, and what is left is the runs' difference.

The p-value needs Student's t distribution; rather than pull in scipy for one function, it comes from
the regularized incomplete beta function, evaluated by its continued fraction:
P(|T| > t) = I_x(df/2, 1/2) with x = df / (df + t²).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), evaluated with the modified Lentz method."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast only below the mean of the beta distribution; use the symmetry above it.
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class Welch:
    mean_a: float
    mean_b: float
    stdev_a: float
    stdev_b: float
    n_a: int
    n_b: int
    t: float
    df: float
    p: float
    alpha: float = ALPHA
    name: str = "Welch"
    """Which t-test: "Welch" (two independent samples) or "paired" (the same documents in both runs)."""

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    @property
    def verdict(self) -> str:
        return "significant" if self.significant else "not significant"


def welch_test(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Welch | None:
    """Welch's unequal-variance t-test of mean(a) == mean(b); None with fewer than two samples a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    sa, sb = va / len(a), vb / len(b)
    se = math.sqrt(sa + sb)
    if se == 0.0:  # identical constant samples, or two different constants: no noise to weigh against
        t, df = (0.0 if ma == mb else math.copysign(math.inf, mb - ma)), float(len(a) + len(b) - 2)
    else:
        t = (mb - ma) / se
        df = (sa + sb) ** 2 / (sa**2 / (len(a) - 1) + sb**2 / (len(b) - 1))
    return Welch(ma, mb, math.sqrt(va), math.sqrt(vb), len(a), len(b), t, df, t_two_sided_p(t, df), alpha)


def paired_test(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Welch | None:
    """Student's paired t-test of mean(b - a) == 0, where ``a[i]`` and ``b[i]`` score the same document;
    None with fewer than two pairs, or when no pair differs: with every difference zero there is no spread
    and no mean to test, and a "t = 0, p = 1" would report a test that was never defined."""
    if len(a) != len(b) or len(a) < 2:
        return None
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    if not any(diffs):
        return None
    n, mean = len(diffs), statistics.fmean(diffs)
    se = math.sqrt(statistics.variance(diffs) / n)
    # Every document moved by the same amount (often none): no spread to weigh the move against.
    flat = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    t = flat if se == 0.0 else mean / se
    df = float(n - 1)
    ma, mb, sa, sb = statistics.fmean(a), statistics.fmean(b), statistics.stdev(a), statistics.stdev(b)
    return Welch(ma, mb, sa, sb, n, n, t, df, t_two_sided_p(t, df), alpha, name="paired")
