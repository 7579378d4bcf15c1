"""The dry-run transport: each request body goes to a file instead of SendGrid."""

from __future__ import annotations

from pathlib import Path

from newsletter.atomic import CannotWrite, make_folder, write_failure
from newsletter.sending.transport import NotPostedError, PreparedBatch, Response

FILE_PATTERN = "request-{number:05d}.json"


class DryRunTransport:
    """Writes each body, byte for byte what would be POSTed, to `folder/request-NNNNN.json`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        make_folder(folder)
        # Files of an earlier dry run would mix with this one's.
        for old in folder.glob("request-*.json"):
            try:
                old.unlink()
            except OSError as exc:
                raise CannotWrite(write_failure(old, exc)) from None

    def post(self, batch: PreparedBatch) -> Response:
        path = self.folder / FILE_PATTERN.format(number=batch.number)
        try:
            path.write_bytes(batch.body)
        except OSError as exc:
            # Nothing was posted, whatever the disk did: not uncertain, and no point trying again.
            raise NotPostedError(f"{write_failure(path, exc)}; this dry run sent nothing") from None
        return Response(202, message_id=f"dry-run-{batch.number:05d}")

    def close(self) -> None:
        pass
