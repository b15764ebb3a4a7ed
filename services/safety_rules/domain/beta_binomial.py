"""Bayesian beta-binomial safety monitoring (DOMAIN §7.2 item 2; SAFETY_RULES §4 H-SI).

Prior p ~ Beta(a, b); after x participants with the event among n, the posterior is
Beta(a + x, b + n - x) and the monitoring statistic is P(p > p* | x, n) = 1 - I_{p*}(a + x, b + n - x),
with I the regularized incomplete beta function, evaluated here by the continued fraction of
Numerical Recipes (modified Lentz), since scipy is not a dependency. The boundary is
b_n = min{x : P(p > p* | x, n) >= c}.
"""

from __future__ import annotations

import math
from functools import lru_cache

_TINY = 1e-300
_EPSILON = 1e-15
_MAX_TERMS = 500


def _clamp(value: float) -> float:
    return _TINY if abs(value) < _TINY else value


def _continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz evaluation of the continued fraction for I_x(a, b) (Numerical Recipes `betacf`)."""
    c = 1.0
    d = 1.0 / _clamp(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, _MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 / _clamp(1.0 + even * d)
        c = _clamp(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 / _clamp(1.0 + odd * d)
        c = _clamp(1.0 + odd / c)
        step = d * c
        result *= step
        if abs(step - 1.0) < _EPSILON:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0 or not 0.0 <= x <= 1.0:
        raise ValueError(f"I_x(a, b) needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


@lru_cache(maxsize=4096)  # pure; halting asks for the same (x, n) at every qualifying event
def posterior_exceeds(x: int, n: int, alpha: float, beta: float, rate: float) -> float:
    """P(p > rate | x events among n) under the prior Beta(alpha, beta)."""
    return 1.0 - regularized_incomplete_beta(alpha + x, beta + n - x, rate)


@lru_cache(maxsize=1024)
def boundary(n: int, alpha: float, beta: float, rate: float, threshold: float) -> int | None:
    """b_n = the smallest count x whose posterior reaches the threshold; None if no x can.

    x may exceed n (DOMAIN §7.3 lists b_1 = 2): the search runs while the posterior is defined.
    """
    x = 0
    while beta + n - x > 0:
        if posterior_exceeds(x, n, alpha, beta, rate) >= threshold:
            return x
        x += 1
    return None
