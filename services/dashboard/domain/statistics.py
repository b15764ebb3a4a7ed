"""Exact statistics for the DMC: Poisson and binomial confidence intervals, the conditional exact test of
the primary endpoint, and the beta-binomial monitoring posterior (DOMAIN §7.2 items 2 and 8, §7.3).

Pure functions of plain numbers. Counts are small (a pilot of 8), so tail sums are exact sums of
terms; interval ends are found by bisection on those sums (the textbook definitions, Garwood 1936 and
Clopper-Pearson 1934), not by normal approximations. The incomplete beta comes from mpmath.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath

_BISECTION_STEPS = 200


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean)."""
    if k < 0:
        return 0.0
    if mean == 0:
        return 1.0
    return math.fsum(math.exp(i * math.log(mean) - mean - math.lgamma(i + 1)) for i in range(k + 1))


def binomial_pmf(k: int, n: int, p: float) -> float:
    if p in (0.0, 1.0):
        return float(k == round(n * p))
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Bin(n, p)."""
    return math.fsum(binomial_pmf(i, n, p) for i in range(max(k, 0), n + 1))


def _solve(decreasing: Callable[[float], float], target: float, low: float, high: float) -> float:
    """The x in [low, high] where a decreasing function crosses ``target`` (bisection)."""
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        if decreasing(middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def poisson_exact_interval(events: int, confidence: float = 0.95) -> Interval:
    """Exact (Garwood) interval for a Poisson mean after ``events`` events."""
    tail = (1 - confidence) / 2
    ceiling = events + 50 + 20 * math.sqrt(events + 1)
    high = _solve(lambda mean: poisson_cdf(events, mean), tail, 0.0, ceiling)
    if events == 0:
        return Interval(0.0, high)
    low = _solve(lambda mean: poisson_cdf(events - 1, mean), 1 - tail, 0.0, ceiling)
    return Interval(low, high)


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval for a binomial proportion."""
    tail = (1 - confidence) / 2
    low = 0.0
    if successes > 0:
        low = _solve(lambda p: 1 - binomial_upper_tail(successes, trials, p), 1 - tail, 0.0, 1.0)
    high = 1.0
    if successes < trials:
        high = _solve(lambda p: 1 - binomial_upper_tail(successes + 1, trials, p), tail, 0.0, 1.0)
    return Interval(low, high)


@dataclass(frozen=True)
class Rate:
    """Events per person-year, with its exact interval."""

    events: int
    person_years: float
    rate: float | None
    interval: Interval | None


def exposure_adjusted_rate(events: int, person_years: float, confidence: float = 0.95) -> Rate:
    if person_years <= 0:
        return Rate(events, person_years, None, None)
    bounds = poisson_exact_interval(events, confidence)
    return Rate(
        events, person_years, events / person_years, Interval(bounds.low / person_years, bounds.high / person_years)
    )


@dataclass(frozen=True)
class ConditionalTest:
    """DOMAIN §7.2 item 8: given m events over run-in time T_R and treatment time T_T, under equal
    rates k_T ~ Bin(m, T_T / (T_T + T_R)); the one-sided p-value is P(K >= k_T)."""

    total_events: int
    treatment_events: int
    treatment_share: float
    p_value: float | None


def conditional_exact_test(
    run_in_events: int, treatment_events: int, run_in_time: float, treatment_time: float
) -> ConditionalTest:
    total = run_in_events + treatment_events
    if run_in_time + treatment_time <= 0:
        return ConditionalTest(total, treatment_events, math.nan, None)
    share = treatment_time / (treatment_time + run_in_time)
    p_value = binomial_upper_tail(treatment_events, total, share) if total else None
    return ConditionalTest(total, treatment_events, share, p_value)


def posterior_exceeds(events: int, n: int, prior_alpha: float, prior_beta: float, rate: float) -> float:
    """P(p > rate | events among n) with p ~ Beta(prior_alpha, prior_beta) a priori (DOMAIN §7.2 item 2)."""
    below = mpmath.betainc(prior_alpha + events, prior_beta + n - events, 0, rate, regularized=True)
    return float(1 - below)


def bayesian_boundary(n: int, prior_alpha: float, prior_beta: float, rate: float, threshold: float) -> int | None:
    """b_n = min{x : P(p > rate | x, n) >= threshold}; None when no count reaches it."""
    x = 0
    while prior_beta + n - x > 0:
        if posterior_exceeds(x, n, prior_alpha, prior_beta, rate) >= threshold:
            return x
        x += 1
    return None
