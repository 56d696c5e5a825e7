"""Checkpoint bytes held per principal and per process, until each checkpoint expires.

A checkpoint lives ``checkpoint_retention_seconds`` from its creation, whether its
session is still open or was closed long ago; nothing else bounds what a principal can
keep this way (open, fill, checkpoint, close, repeat). ``RetainedBytes`` counts the
bytes of every checkpoint created through this process until it expires, is deleted or
is evicted (``max_checkpoints``); ``SessionStore`` refuses a new checkpoint while the
principal's count or the process's is at its limit (the policy is *refuse*, never
dropping another checkpoint a client may still restore).

Per process: with several replicas sharing one Redis, each counts the checkpoints
created through it (the store may hold up to replicas x ``max_retained_bytes``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class RetainedBytes:
    """Bytes of live checkpoints, per principal and in total (async-safe: no awaits)."""

    retention_ms: int
    _sizes: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> principal, bytes
    _by_principal: dict[str, int] = field(default_factory=dict)
    _expiry: list[tuple[int, str]] = field(default_factory=list)  # (expires ms, id) heap
    total: int = 0

    def add(self, principal: str, checkpoint_id: str, size: int, now_ms: int) -> None:
        self.forget(checkpoint_id)
        self._sizes[checkpoint_id] = (principal, size)
        self._by_principal[principal] = self._by_principal.get(principal, 0) + size
        self.total += size
        heapq.heappush(self._expiry, (now_ms + self.retention_ms, checkpoint_id))

    def forget(self, checkpoint_id: str) -> None:
        """Deleted or evicted: its bytes no longer count (its heap entry is skipped)."""
        entry = self._sizes.pop(checkpoint_id, None)
        if entry is None:
            return
        principal, size = entry
        left = self._by_principal[principal] - size
        if left:
            self._by_principal[principal] = left
        else:
            del self._by_principal[principal]
        self.total -= size

    def usage(self, principal: str, now_ms: int) -> tuple[int, int]:
        """(bytes held by ``principal``, bytes held in this process) at ``now_ms``."""
        while self._expiry and self._expiry[0][0] <= now_ms:
            _, checkpoint_id = heapq.heappop(self._expiry)
            self.forget(checkpoint_id)
        if len(self._expiry) > 2 * len(self._sizes) + 64:  # forgotten ids pile up
            self._expiry = [e for e in self._expiry if e[1] in self._sizes]
            heapq.heapify(self._expiry)
        return self._by_principal.get(principal, 0), self.total
