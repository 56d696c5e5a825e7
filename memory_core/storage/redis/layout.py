"""Redis key layout: the one place that names storage keys.

All keys of one session share the hash tag ``{<tag>}``, the session's tag
(``memory_core.keys.session_tag``, a one-way digest of its id), so every script touches
a single cluster slot and no key name or checkpoint id reveals a session id (a handle).
Reserved names:

=============================  ======  ===========================================
key                            type    TTL
=============================  ======  ===========================================
``<prefix>:{<tag>}:meta``      hash    session lease (principal, lease, bytes, task)
``<prefix>:{<tag>}:vars``      hash    session lease (key -> value JSON)
``<prefix>:{<tag>}:exp``       zset    session lease (key -> expiry ms)
``<prefix>:{<tag>}:pad``       list    session lease (scratchpad entries)
``<prefix>:{<tag>}:cpm``       hash    checkpoint retention (id -> created|size|label)
``<prefix>:{<tag>}:cp:<id>``   string  checkpoint retention (snapshot JSON)
``<prefix>:{<tag>}:meta:closed`` string  one lease after a deliberate close (tombstone)
``<prefix>:{<tag>}:wb:<t>:*``  any     5 minutes (one staged write-back attempt)
``<prefix>:{<ptag>}:rcp``      zset    checkpoint retention (id -> created ms)
``<prefix>:{<ptag>}:rcpm``     hash    checkpoint retention (id -> created|size|label)
=============================  ======  ===========================================

The tombstone tells a session closed on purpose (never put back from a mirror) from one
whose keys Redis lost (restored from the mirror of a process that holds it).

``<ptag>`` is a principal's tag (``keys.principal_tag``): the index of its recent
checkpoints, so a fresh session can find those of its ended sessions. It lives in its
own slot, written after the checkpoint (best effort) and read before the snapshots.

Session and checkpoint ids are validated (``memory_core.keys``) before they get
here; user keys never become key names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from memory_core.keys import principal_tag, session_tag


@lru_cache(maxsize=4096)
def _session_keys(prefix: str, session_id: str) -> tuple[str, ...]:
    b = f"{prefix}:{{{session_tag(session_id)}}}:"
    return (b + "meta", b + "vars", b + "exp", b + "pad", b + "cpm")


@dataclass(frozen=True, slots=True)
class KeyLayout:
    prefix: str

    def base(self, session_id: str) -> str:
        return self.tag_base(session_tag(session_id))

    def tag_base(self, tag: str) -> str:
        return f"{self.prefix}:{{{tag}}}:"

    def tag_meta(self, tag: str) -> str:
        """The meta key of the session whose tag is ``tag`` (its id unknown)."""
        return self.tag_base(tag) + "meta"

    def tag_checkpoint(self, tag: str, checkpoint_id: str) -> str:
        return self.tag_base(tag) + "cp:" + checkpoint_id

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

    def recent_checkpoints(self, principal: str) -> list[str]:
        """KEYS of the principal's checkpoint index: the zset by time, the summaries."""
        b = self.tag_base(principal_tag(principal))
        return [b + "rcp", b + "rcpm"]
