"""Pacing inside a provider's quotas: the rate across threads, and the day's allowance that two
sends (two processes) share without ever handing out more than the limit."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from pathlib import Path

from newsletter.sending.pacing import DailyAllowance, Pace


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pace_gives_each_message_its_own_turn() -> None:
    clock = FakeClock()
    pace = Pace(rate=10, clock=clock)
    waits: list[float] = []

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(round(timeout or 0, 6))
            return False

    stop = RecordingStop()
    assert all(pace.wait(stop.wait) for _ in range(4))
    assert waits == [0.0, 0.1, 0.2, 0.3]  # the first goes at once, each next one 0.1 s after the last


def test_a_stop_ends_the_wait_and_nothing_is_posted() -> None:
    pace = Pace(rate=0.001)
    stop = threading.Event()
    assert pace.wait(stop.wait)
    stop.set()
    assert not pace.wait(stop.wait)  # its turn was 1,000 s away: the stop ends the wait at once


def test_without_a_rate_nothing_waits() -> None:
    assert Pace(None).wait(threading.Event().wait)
    assert Pace(None).per_second is None


def test_the_allowance_is_per_utc_day(tmp_path: Path) -> None:
    day = [dt.date(2026, 12, 6)]
    allowance = DailyAllowance(tmp_path, limit=5, today=lambda: day[0])
    assert allowance.take(3) == 3
    assert allowance.take(3) == 2
    assert allowance.take(1) == 0
    status = allowance.status()
    assert (status.used, status.left) == (5, 0)
    assert status.resets_at == dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    allowance.give_back(1, dt.date(2026, 12, 6))
    assert allowance.take(4) == 1
    day[0] = dt.date(2026, 12, 7)
    assert allowance.take(4) == 4


def _take_all(folder: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    allowance = DailyAllowance(Path(folder), limit=30, today=lambda: dt.date(2026, 12, 6))
    results.put(sum(allowance.take(1) for _ in range(20)))


def test_two_processes_never_take_more_than_the_limit_together(tmp_path: Path) -> None:
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=_take_all, args=(str(tmp_path), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    granted = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    assert sum(granted) == 30
    assert DailyAllowance(tmp_path, 30, today=lambda: dt.date(2026, 12, 6)).status().used == 30


def test_a_send_leases_its_messages_and_gives_back_what_it_did_not_use(tmp_path: Path) -> None:
    day = dt.date(2026, 12, 6)
    first = DailyAllowance(tmp_path, limit=120, today=lambda: day)
    second = DailyAllowance(tmp_path, limit=120, today=lambda: day)
    assert all(first.use() for _ in range(3))
    assert first.status().used == DailyAllowance.LEASE  # one transaction for many messages
    assert sum(second.use() for _ in range(200)) == 120 - DailyAllowance.LEASE
    first.unuse()  # one that never reached the server
    first.release()
    assert first.status().used == 120 - DailyAllowance.LEASE + 2
    assert DailyAllowance(tmp_path, limit=None).use()  # no limit: nothing counted, nothing written
