"""The rate limiter's answer to 429s, and the group history a new leader takes over."""

from __future__ import annotations

from bot.telegram.ratelimit import BOT_LIMITED_CHATS, BOT_LIMITED_SECONDS, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(30, 1, 20, clock)


def test_a_429_for_one_chat_pauses_that_chat_only() -> None:
    clock = Clock()
    rl = limiter(clock)
    assert rl.rate_limited(101, 10) is False
    assert rl.wait(101) == 10
    assert rl.wait(102) == 0 and rl.global_wait() == 0
    busy, _ = rl.busy_chats()
    assert busy == {101}


def test_429s_for_several_chats_at_once_pause_everyone() -> None:
    clock = Clock()
    rl = limiter(clock)
    chats = list(range(200, 200 + BOT_LIMITED_CHATS))
    for chat in chats[:-1]:
        assert rl.rate_limited(chat, 5) is False
    assert rl.rate_limited(chats[-1], 5) is True
    assert rl.global_wait() == 5 and rl.wait(999) == 5


def test_429s_spread_out_in_time_are_not_evidence_for_the_whole_bot() -> None:
    clock = Clock()
    rl = limiter(clock)
    for chat in range(300, 300 + BOT_LIMITED_CHATS + 2):
        assert rl.rate_limited(chat, 1) is False
        clock.now += BOT_LIMITED_SECONDS + 0.1
    assert rl.global_wait() == 0


def test_a_new_leader_remembers_the_groups_minute() -> None:
    clock = Clock()
    old = limiter(clock)
    for _ in range(20):
        old.record(-100)
        clock.now += 0.5
    assert old.wait(-100) > 0
    new = limiter(Clock())  # another process: another monotonic clock
    new.remember(old.group_history())
    assert new.wait(-100) > 40  # the old minute is not over for the group
    assert new.wait(555) == 0  # private chats are not held up
