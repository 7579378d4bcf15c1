"""Scheduled sends: WHEN as a person writes it, SendGrid's 72 hours and 10 minutes."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from newsletter.sendgrid.schedule import ScheduleError, parse_when

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-02T09:00+01:00", dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)),
    ("2026-12-01T10:30Z", dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC)),
    ("2026-12-04T08:59:59+00:00", dt.datetime(2026, 12, 4, 8, 59, 59, tzinfo=dt.UTC)),
])
def test_iso_8601_with_an_offset(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, NOW) == expected


def test_local_time_as_typed() -> None:
    when = parse_when("2026-12-02 09:00", NOW)
    assert when.tzinfo is not None
    assert when.replace(tzinfo=None) == dt.datetime(2026, 12, 2, 9, 0)


@pytest.mark.parametrize(("text", "message"), [
    ("tomorrow", "is not a time: write 2026-12-02T09:00+01:00"),
    ("2026-12-02T09:00", "has no offset: add one"),
    ("2026-12-01T08:59Z", "is not in the future"),
    ("2026-12-04T09:00:01Z", "is more than 72 hours ahead, which SendGrid refuses: nothing was sent"),
])
def test_times_sendgrid_would_not_schedule_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_when(text, NOW)
