"""Redis key layout: the one place that names storage keys.

All keys of one session share the hash tag ``{session_id}`` so every script touches a
single cluster slot. Reserved names:

=============================  ======  ===========================================
key                            type    TTL
=============================  ======  ===========================================
``<prefix>:{<sid>}:meta``      hash    session lease (principal, lease, bytes, task)
``<prefix>:{<sid>}:vars``      hash    session lease (key -> value JSON)
``<prefix>:{<sid>}:exp``       zset    session lease (key -> expiry ms)
``<prefix>:{<sid>}:pad``       list    session lease (scratchpad entries)
``<prefix>:{<sid>}:cpm``       hash    checkpoint retention (id -> created|size|label)
``<prefix>:{<sid>}:cp:<id>``   string  checkpoint retention (snapshot JSON)
=============================  ======  ===========================================

Session and checkpoint ids are validated (``memory_core.keys``) before they get
here; user keys never become key names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=4096)
def _session_keys(prefix: str, session_id: str) -> tuple[str, ...]:
    b = f"{prefix}:{{{session_id}}}:"
    return (b + "meta", b + "vars", b + "exp", b + "pad", b + "cpm")


@dataclass(frozen=True, slots=True)
class KeyLayout:
    prefix: str

    def base(self, session_id: str) -> str:
        return f"{self.prefix}:{{{session_id}}}:"

    def session_keys(self, session_id: str) -> tuple[str, ...]:
        """KEYS of every session script: meta, vars, exp, pad, cpm."""
        return _session_keys(self.prefix, session_id)

    def meta(self, session_id: str) -> str:
        return self.base(session_id) + "meta"

    def checkpoint_base(self, session_id: str) -> str:
        return self.base(session_id) + "cp:"

    def checkpoint(self, session_id: str, checkpoint_id: str) -> str:
        return self.checkpoint_base(session_id) + checkpoint_id
