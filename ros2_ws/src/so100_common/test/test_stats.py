"""Wilson score interval against published values (z = 1.96)."""

import pytest

from so100_common.stats import wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),  # 0/10 is not "0%": up to 28% is consistent with it
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),  # 10/10 is not "100%"
        (81, 100, 0.7222, 0.8749),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_interval_known_values(successes, n, low, high):
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_narrows_with_more_episodes_and_rejects_nonsense():
    assert wilson_interval(40, 50)[1] - wilson_interval(40, 50)[0] > wilson_interval(400, 500)[1] - wilson_interval(
        400, 500)[0]
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
