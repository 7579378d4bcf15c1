"""The send loop through an in-memory transport (`tests/recording_transport.py`): what it posts,
once, whatever the answers. Fast unit tests; the same over HTTP is in test_send*.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.sending.report import SendStopped
from newsletter.sending.transport import PreparedBatch, Response, UncertainError
from tests.recording_transport import Answer, RecordingTransport, send_through
from tests.send_helpers import generated, write_list

KEY = "SG.recording-transport-test-key.not-a-real-one-at-all"


@pytest.fixture
def two_batches(publication: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list of 1,500 subscribed (two requests of SendGrid's 1,000) and an API key to read."""
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    rows = generated(1500)
    write_list(publication, rows)
    return [row[0] for row in rows]


def test_a_rerun_posts_nobody_a_second_time(publication: Path, two_batches: list[str]) -> None:
    first = RecordingTransport()
    report = send_through(publication, first)
    assert report.accepted == 1500 and report.requests == 2
    assert sorted(first.recipients()) == sorted(two_batches)

    again = RecordingTransport()
    rerun = send_through(publication, again)
    assert again.posted == []
    assert rerun.skipped == 1500 and rerun.accepted == 0


def test_a_refused_batch_stops_the_send_and_a_rerun_sends_everyone_once(publication: Path,
                                                                       two_batches: list[str]) -> None:
    def refuse_the_first(number: int, batch: PreparedBatch) -> Answer:
        if number == 1:
            return Response(400, body=b'{"errors": [{"message": "The from address does not match"}]}')
        return Response(202, f"message-{number}")

    transport = RecordingTransport(refuse_the_first)
    with pytest.raises(SendStopped) as stopped:
        send_through(publication, transport)
    assert "SendGrid refused the request (400: The from address does not match)" in str(stopped.value)
    [refused] = transport.posted  # nothing posted after the refusal
    assert stopped.value.report.failed == len(refused) and stopped.value.report.accepted == 0

    again = RecordingTransport()
    rerun = send_through(publication, again)
    assert sorted(again.recipients()) == sorted(two_batches)
    assert rerun.accepted == 1500


def test_an_uncertain_batch_is_never_posted_again_unasked(publication: Path, two_batches: list[str]) -> None:
    def lose_the_answer_to_the_first(number: int, batch: PreparedBatch) -> Answer:
        if number == 1:
            return UncertainError("the connection closed after the body was sent")
        return Response(202, f"message-{number}")

    transport = RecordingTransport(lose_the_answer_to_the_first)
    report = send_through(publication, transport)
    in_doubt = transport.posted[0]
    assert report.uncertain == len(in_doubt)

    again = RecordingTransport()
    rerun = send_through(publication, again)
    assert again.posted == []  # the uncertain ones wait for --retry-uncertain, the rest had it
    assert rerun.uncertain == len(in_doubt)

    asked = RecordingTransport()
    send_through(publication, asked, retry_uncertain=True)
    assert sorted(asked.recipients()) == sorted(in_doubt.keys)
