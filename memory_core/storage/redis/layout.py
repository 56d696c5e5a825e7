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
``<prefix>:{<sid>}:meta:closed`` string  one lease after a deliberate close (tombstone)
``<prefix>:{<sid>}:wb:<t>:*``  any     5 minutes (one staged write-back attempt)
=============================  ======  ===========================================

The tombstone tells a session closed on purpose (never put back from a mirror) from one
whose keys Redis lost (restored from the mirror of a process that holds it).

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

    def staging(self, session_id: str, token: str) -> str:
        """Base of one staged write-back attempt's keys (``import_stage.lua``)."""
        return f"{self.base(session_id)}wb:{token}:"

    def checkpoint(self, session_id: str, checkpoint_id: str) -> str:
        return self.checkpoint_base(session_id) + checkpoint_id
