"""A `Transport` that keeps in memory every batch a send posts and answers as a test scripts it:
the send loop's unit tests run through it, without HTTP (the real-HTTP tests use the SendGrid
double, `tests/sendgrid_double.py`; they stay the proof that the wire format is right)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from newsletter.config import load_settings
from newsletter.sending.provider import RetryPolicy
from newsletter.sending.report import SendReport
from newsletter.sending.plan import SendOptions, prepare_send
from newsletter.sending.run import run_send
from newsletter.sending.transport import PreparedBatch, Response

# What a batch is answered: a response, an exception the transport raises (`UncertainError`...).
Answer = Response | Exception


@dataclass
class RecordingTransport:
    """Answers the Nth post with `answers(N, batch)` (every post accepted unless it says otherwise)
    and records each batch posted, in order; safe from the send's threads."""

    answers: Callable[[int, PreparedBatch], Answer] = lambda number, batch: Response(202, f"message-{number}")
    posted: list[PreparedBatch] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, batch: PreparedBatch) -> Response:
        with self._lock:
            self.posted.append(batch)
            number = len(self.posted)
        answer = self.answers(number, batch)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True

    def recipients(self) -> list[str]:
        """The ledger keys of every recipient posted, in the order posted."""
        return [key for batch in self.posted for key in batch.keys]


def send_through(root: Path, transport: RecordingTransport, **options: object) -> SendReport:
    """The publication at `root` sent as `newsletter send` does, its batches posted to `transport`
    (one at a time, retries at once: the order of the posts is the order of the batches)."""
    plan = prepare_send(load_settings(root), "issue-1", SendOptions(concurrency=1, **options),  # type: ignore[arg-type]
                        retry=RetryPolicy(attempts=1, backoff=0.0, max_backoff=0.0))
    return run_send(replace(plan, transport=transport))
