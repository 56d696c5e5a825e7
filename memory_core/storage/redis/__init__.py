"""The Redis backend and everything only it uses: clients per topology, the key layout,
the Lua scripts."""

from memory_core.storage.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
