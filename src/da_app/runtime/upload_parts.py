"""Which uploads are out, and how many of their parts have still to come back.

An upload is done when every part is: one part per produced record, or one for the whole
upload when a custom ``batch_upload_handler`` replaces producing. The first failed part's
error is the upload's error; later parts still count down.
"""

from __future__ import annotations

from da_app.runtime.actions import UploadDone


class UploadParts:
    """Uploads in flight: ``upload_id`` -> parts still out and the first error."""

    def __init__(self) -> None:
        self._out: dict[int, tuple[int, str | None]] = {}

    def __len__(self) -> int:
        """Uploads started and not done yet."""
        return len(self._out)

    def started(self, upload_id: int, parts: int) -> None:
        """An upload of ``parts`` parts (at least one) went out."""
        self._out[upload_id] = (parts, None)

    def part_done(self, item: UploadDone) -> tuple[bool, str | None] | None:
        """Account one part; returns the upload's outcome ``(ok, error)`` once its last part
        came back, else None (also for an upload not in flight)."""
        entry = self._out.get(item.upload_id)
        if entry is None:
            return None
        left, error = entry
        if not item.ok and error is None:
            error = item.error or "delivery failed"
        if left > 1:
            self._out[item.upload_id] = (left - 1, error)
            return None
        del self._out[item.upload_id]
        return error is None, error
