"""The outbox workers: send the emails sign-ups queued, exactly once, whatever the provider does.

A request writes its email into the outbox in the same transaction as the sign-up
(store.py) and wakes this worker; the reader's answer never waits for the provider.
For each email due, the worker:
1. marks it `sending` (committed) before the post;
2. posts it once through the `Mailer`;
3. marks it `sent`; or, when the provider cannot have taken it (down, 429, 5xx), queues
   it again with a growing delay (30 s doubling to an hour), so a provider that is down
   loses no email; or, when it may have gone out without an answer, marks it `uncertain`
   and counts it: never resent blindly, since a reader would get it twice.
A server killed between 1 and 3 finds the email `sending` at start-up: uncertain too.
"""

from __future__ import annotations

import logging
import threading
import time

from newsletter.sending.mailer import Mailer, MailerDown, MailerRefused, MailerUncertain
from newsletter.signup.store import FAILED, SENT, UNCERTAIN, SignupStore

log = logging.getLogger("newsletter.signup")

FIRST_RETRY = 30.0   # seconds after a failed attempt
LONGEST_RETRY = 3600.0
CLEAN_EVERY = 3600.0  # the retention clean-up (store.clean)


def retry_delay(attempts: int, first: float = FIRST_RETRY) -> float:
    return min(first * 2.0 ** max(attempts - 1, 0), LONGEST_RETRY)


SENDERS = 4  # emails in flight at once: at SendGrid's 100-500 ms an answer, one at a time left a
            # burst of 500 sign-ups waiting up to two minutes for their confirmation


class OutboxWorker:
    """`senders` threads that send what the outbox holds; `wake()` after queueing an email.

    Each email is claimed (`sending`, committed) by one thread before it is posted, so
    several threads never post one email twice.
    """

    def __init__(self, store: SignupStore, mailer: Mailer, first_retry: float = FIRST_RETRY,
                 senders: int = SENDERS) -> None:
        self._store = store
        self._mailer = mailer
        self._first_retry = first_retry
        self._changed = threading.Condition()
        self._generation = 0  # bumped by every wake(): a thread that saw it change does not sleep
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(number == 0,), name=f"signup-outbox-{number}",
                                          daemon=True) for number in range(senders)]
        self._count_lock = threading.Lock()
        self.uncertain = 0  # emails of this run that may or may not have gone out

    def start(self) -> None:
        recovered = self._store.recover_interrupted(time.time())
        if recovered:
            self._count_uncertain(recovered)
            log.warning("%d email(s) were being posted when the server last stopped: marked uncertain, "
                        "not sent again", recovered)
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def stop(self) -> None:
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.join()

    def _count_uncertain(self, count: int = 1) -> None:
        with self._count_lock:
            self.uncertain += count

    def _run(self, cleans: bool) -> None:
        last_clean = 0.0
        while not self._stopping.is_set():
            with self._changed:
                seen = self._generation
            now = time.time()
            if cleans and now - last_clean >= CLEAN_EVERY:
                self._store.clean(now)
                last_clean = now
            self._send_due()
            due = self._store.next_attempt_at()
            wait = CLEAN_EVERY if due is None else max(due - time.time(), 0.0)
            with self._changed:
                if self._generation == seen and not self._stopping.is_set():
                    self._changed.wait(min(wait, CLEAN_EVERY))

    def _send_due(self) -> None:
        while not self._stopping.is_set():
            item = self._store.next_due(time.time())
            if item is None:
                return
            try:
                self._mailer.send(item.email)
            except MailerDown as exc:
                delay = retry_delay(item.attempts, self._first_retry)
                self._store.retry_later(item.id, time.time() + delay, str(exc))
                log.warning("the %s email could not be handed to the provider (%s); trying again in %.0f s",
                            item.kind, exc, delay)
            except MailerUncertain as exc:
                self._count_uncertain()
                self._store.finish(item.id, UNCERTAIN, time.time(), str(exc))
                log.error("the %s email may or may not have gone out (%s): not sent again", item.kind, exc)
            except MailerRefused as exc:
                self._store.finish(item.id, FAILED, time.time(), str(exc))
                log.error("the provider refused the %s email (%s)", item.kind, exc)
            except Exception as exc:  # a worker that dies would leave every later email queued
                self._count_uncertain()
                self._store.finish(item.id, UNCERTAIN, time.time(), f"{type(exc).__name__}")
                log.exception("sending the %s email failed unexpectedly: marked uncertain", item.kind)
            else:
                self._store.finish(item.id, SENT, time.time())
