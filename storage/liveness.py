"""Whether a run marked ``running`` is still alive.

A run whose process died without a ``stop`` document keeps ``running`` in storage; readers show
it as ``interrupted`` once its writer's heartbeat (``runs.updated_at``, refreshed at every flush)
is older than ``STALE_AFTER_S`` of wall time. Its data are kept.
"""
from __future__ import annotations

from datetime import datetime, timezone

STALE_AFTER_S = 15 * 60


def effective_status(status: str, updated_at: str | None) -> str:
    if status != "running" or not updated_at:
        return status
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(updated_at)).total_seconds()
    return "interrupted" if age > STALE_AFTER_S else status
