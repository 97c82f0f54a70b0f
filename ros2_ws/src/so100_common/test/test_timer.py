"""The executor's timer is drift-free: ticks stay on start + k*period."""

from so100_common.node import Timer


def test_ticks_stay_on_the_grid():
    t = Timer(0.01, lambda: None)
    start = t._start
    for k in range(1, 1001):
        assert abs(t.due - (start + k * 0.01)) < 1e-9
        t.advance(t.due + 0.003)  # each callback runs 3 ms late: no drift accumulates
    assert t.missed == 0


def test_overrun_skips_missed_ticks_instead_of_bunching():
    t = Timer(0.01, lambda: None)
    first = t.due
    t.advance(first + 0.035)  # the callback took 3.5 periods
    assert t.missed == 3
    assert t.due > first + 0.035 and abs((t.due - first) / 0.01 - round((t.due - first) / 0.01)) < 1e-6
