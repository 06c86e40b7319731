"""tests.conftest: the helpers every test module uses."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import deadline


def test_deadline_raises_in_a_block_that_runs_too_long():
    with pytest.raises(TimeoutError, match="still running after 0.2 s"), deadline(0.2):
        time.sleep(5)


def test_deadline_hands_the_suite_s_per_test_limit_back_with_what_is_left_of_it():
    """pytest-timeout's signal method arms ITIMER_REAL for the whole test: a deadline block inside it must not disarm it."""
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with deadline(5):
            time.sleep(0.1)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 29 < left < 30, left
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not fired
