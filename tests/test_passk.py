"""Unbiased pass@k (Chen et al. 2021): the estimator, its numerics, and when a k may be reported."""

import math
from fractions import Fraction

import pytest

from hrmkit.code.passk import pass_at_k, pass_at_k_report


def exact_pass_at_k(n, c, k):
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def test_matches_the_combinatorial_definition_for_every_small_case():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), abs=1e-12), (n, c, k)


def test_product_form_stays_accurate_where_binomials_overflow_floats():
    # C(1000, 500) ~ 1e299: the ratio of binomials in floats would be inf / inf.
    for n, c, k in [(1000, 3, 500), (1000, 1, 100), (200, 7, 100), (5000, 10, 1000)]:
        assert math.isfinite(pass_at_k(n, c, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), rel=1e-9)


def test_edge_cases():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # every 5 of 10 includes one of the 6 correct
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the pass rate
    assert pass_at_k(1, 1, 1) == 1.0


def test_grows_with_k():
    values = [pass_at_k(20, 3, k) for k in range(1, 21)]
    assert values == sorted(values)


@pytest.mark.parametrize("n, c, k", [(5, 1, 6), (5, 6, 1), (5, -1, 1), (5, 1, 0), (0, 0, 1)])
def test_impossible_counts_are_refused(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_report_is_the_mean_over_tasks_and_keeps_per_task_rates():
    report = pass_at_k_report({"a": (10, 0), "b": (10, 5), "c": (10, 10)}, [1, 5, 10])
    assert report.scores[1] == pytest.approx((0 + 0.5 + 1) / 3)
    assert report.scores[10] == pytest.approx((0 + 1 + 1) / 3)
    assert report.per_task["b"] == {"n": 10, "passed": 5, "rate": 0.5}
    assert not report.not_reported


def test_a_k_above_some_task_sample_count_is_not_reported_and_says_why():
    report = pass_at_k_report({"a": (10, 2), "b": (4, 1)}, [1, 5, 10])
    assert set(report.scores) == {1}
    assert set(report.not_reported) == {5, 10}
    assert "1 of 2 tasks have fewer than 5 samples" in report.not_reported[5]
    assert "--n" in report.not_reported[10]


def test_no_tasks_reports_nothing():
    report = pass_at_k_report({}, [1])
    assert not report.scores and "no task" in report.not_reported[1]
