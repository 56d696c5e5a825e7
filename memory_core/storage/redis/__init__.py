"""The Redis backend and everything only it uses: a client per topology, the key layout,
the Lua scripts."""

from memory_core.storage.redis.backend import RedisBackend
from memory_core.storage.redis.topology import client_from_url

__all__ = ["RedisBackend", "client_from_url"]
