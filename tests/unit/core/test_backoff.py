"""Back-off after an outage or a refusal: doubling, capped, and jittered when asked."""

import pytest

from cqrs_outbox.core import backoff


def test_exponential__doubles_from_the_first_pause_up_to_the_longest():
    assert [backoff.exponential(n, 0.5, 5.0) for n in range(6)] == [0.5, 1, 2, 4, 5, 5]


@pytest.mark.parametrize("tries", [0, 3, 40])
def test_jittered__lies_between_half_and_all_of_the_exponential_pause(tries):
    ceiling = backoff.exponential(tries, 0.1, 30.0)
    pauses = {backoff.jittered(tries, 0.1, 30.0) for _ in range(200)}
    assert all(ceiling / 2 <= pause <= ceiling for pause in pauses)
    assert len(pauses) > 1  # spread, so clients cut off together come back apart
