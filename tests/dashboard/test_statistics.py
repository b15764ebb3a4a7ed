"""The DMC's statistics against published and hand-computed values (DOMAIN §7.3; Garwood's exact
Poisson limits as tabulated in standard references, e.g. Ulm 1990)."""

from __future__ import annotations

import pytest

from services.dashboard.domain.statistics import (
    bayesian_boundary,
    clopper_pearson,
    conditional_exact_test,
    exposure_adjusted_rate,
    poisson_exact_interval,
    posterior_exceeds,
)


@pytest.mark.parametrize(
    ("events", "low", "high"),
    [
        (0, 0.0, 3.689),
        (1, 0.0253, 5.572),
        (2, 0.2422, 7.225),
        (3, 0.6187, 8.767),
        (5, 1.6235, 11.668),
        (10, 4.7954, 18.390),
    ],
)
def test_exact_poisson_limits_match_the_published_table(events: int, low: float, high: float) -> None:
    interval = poisson_exact_interval(events)
    assert interval.low == pytest.approx(low, abs=6e-4)
    assert interval.high == pytest.approx(high, abs=6e-4)


@pytest.mark.parametrize(
    ("successes", "low", "high"), [(0, 0.0, 0.369), (1, 0.003, 0.527), (2, 0.032, 0.651), (3, 0.085, 0.755)]
)
def test_clopper_pearson_of_x_in_8_matches_domain_7_3(successes: int, low: float, high: float) -> None:
    interval = clopper_pearson(successes, 8)
    assert interval.low == pytest.approx(low, abs=6e-4)
    assert interval.high == pytest.approx(high, abs=6e-4)


@pytest.mark.parametrize(
    ("events", "p_value"), [(1, 0.600), (2, 0.360), (3, 0.216), (4, 0.130), (5, 0.078), (6, 0.047)]
)
def test_conditional_test_with_every_event_on_treatment_matches_domain_7_3(events: int, p_value: float) -> None:
    # 60 days of run-in against 90 days of treatment: T_T / (T_T + T_R) = 0.6 (DOMAIN §7.2 item 8)
    test = conditional_exact_test(0, events, run_in_time=60, treatment_time=90)
    assert test.treatment_share == pytest.approx(0.6)
    assert test.p_value == pytest.approx(p_value, abs=6e-4)


def test_conditional_test_with_events_split_is_the_binomial_upper_tail() -> None:
    # 1 run-in + 1 treatment event, share 0.6: P(K >= 1 | Bin(2, 0.6)) = 1 - 0.4^2 = 0.84
    assert conditional_exact_test(1, 1, 60, 90).p_value == pytest.approx(0.84)


def test_conditional_test_without_events_has_no_p_value() -> None:
    assert conditional_exact_test(0, 0, 60, 90).p_value is None


def test_exposure_adjusted_rate_divides_count_and_limits_by_person_years() -> None:
    rate = exposure_adjusted_rate(2, 0.5)
    assert rate.rate == pytest.approx(4.0)
    assert rate.interval is not None
    assert rate.interval.low == pytest.approx(0.2422 / 0.5, abs=2e-3)
    assert rate.interval.high == pytest.approx(7.225 / 0.5, abs=2e-3)


def test_rate_without_exposure_is_undefined() -> None:
    assert exposure_adjusted_rate(0, 0.0).rate is None


@pytest.mark.parametrize(
    ("events", "n", "posterior"),
    [(1, 8, 0.657), (2, 8, 0.922), (0, 8, 0.121), (0, 1, 0.241), (1, 1, 0.864), (3, 4, 0.997), (2, 6, 0.946)],
)
def test_posterior_matches_safety_rules_4_and_domain_7_3(events: int, n: int, posterior: float) -> None:
    assert posterior_exceeds(events, n, 0.25, 4.75, 0.05) == pytest.approx(posterior, abs=6e-4)


def test_boundary_is_two_at_every_n_up_to_8_for_threshold_0_90() -> None:
    assert [bayesian_boundary(n, 0.25, 4.75, 0.05, 0.90) for n in range(1, 9)] == [2] * 8


def test_boundary_rises_to_three_from_n_6_for_threshold_0_95() -> None:
    assert [bayesian_boundary(n, 0.25, 4.75, 0.05, 0.95) for n in range(1, 9)] == [2, 2, 2, 2, 2, 3, 3, 3]
