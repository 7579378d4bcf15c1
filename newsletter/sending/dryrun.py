"""The dry-run transport: each request body (or message) goes to a file instead of the provider."""

from __future__ import annotations

from pathlib import Path

from newsletter.files.atomic import CannotWrite, make_folder, write_failure
from newsletter.sending.provider import Hold, Outcome, RetryPolicy, Wait
from newsletter.sending.transport import NotPostedError, PreparedBatch, Response, Transport

DRY_RUN_DIR = "dry-run"  # build/ISSUE/dry-run/: where a dry run writes
FILE_PATTERN = "request-{number:05d}.json"  # SendGrid's; each provider names its own


class DryRunTransport:
    """Writes each body, byte for byte what would be posted, to `folder/<file_pattern>`
    (`request-NNNNN.json` for SendGrid, `message-NNNNN.eml` for SMTP, which a mail program opens).

    With `sample`, only the first `sample` bodies are written; the others are still built
    (a recipient whose body cannot be made is still found, and the counts stay exact) and
    taken as if written. `written` counts the files.
    """

    def __init__(self, folder: Path, file_pattern: str = FILE_PATTERN, sample: int | None = None) -> None:
        self.folder = folder
        self.file_pattern = file_pattern
        self.sample = sample
        self.written = 0
        make_folder(folder)
        # Files of an earlier dry run would mix with this one's, whichever provider wrote them.
        for old in [*folder.glob("request-*.json"), *folder.glob("message-*.eml")]:
            try:
                old.unlink()
            except OSError as exc:
                raise CannotWrite(write_failure(old, exc)) from None

    def post(self, batch: PreparedBatch) -> Response:
        if self.sample is not None and self.written >= self.sample:
            return Response(202, message_id=f"dry-run-{batch.number:05d}")
        path = self.folder / self.file_pattern.format(number=batch.number)
        try:
            path.write_bytes(batch.body)
        except OSError as exc:
            # Nothing was posted, whatever the disk did: not uncertain, and no point trying again.
            raise NotPostedError(f"{write_failure(path, exc)}; this dry run sent nothing") from None
        self.written += 1
        return Response(202, message_id=f"dry-run-{batch.number:05d}")

    def close(self) -> None:
        pass


def post_dry_run(transport: Transport, batch: PreparedBatch, policy: RetryPolicy, wait: Wait,
                 hold: Hold | None = None) -> Outcome:
    """A dry run's post: the file is written, or nothing was (and nothing will be)."""
    try:
        response = transport.post(batch)
    except NotPostedError as exc:
        return Outcome("unsent", error=str(exc), fatal=True)
    return Outcome("accepted", message_id=response.message_id, status=response.status)
