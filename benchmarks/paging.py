"""What one ``memory_get_all`` page costs: the whole session, or one page.

``python -m benchmarks.paging [STORE_URL]`` (default ``memory://``; e.g.
``redis://127.0.0.1:6379/0``): 1000 keys of 8 KB, walked in pages of 64 KiB, once the
old way (every page reads and decodes the whole session, then cuts a page) and once
through ``WorkingMemory.get_page``. Prints total and worst-page time for each. Uses the
key prefix ``wmbench-paging`` and closes its session afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import time

from memory_core import Limits, SessionStore, StoreConfig, WorkingMemory, backend_from_url

KEYS = 1000
VALUE = "v" * 8000
PAGE_BYTES = 64 * 1024


async def _whole_session_pages(m: WorkingMemory) -> tuple[int, float]:
    pages, worst, after = 0, 0.0, None
    while True:
        start = time.perf_counter()
        entries = await m.get_entries("*")
        rest = [k for k in entries if after is None or k > after]
        page: list[str] = []
        total = 0
        for key in rest:
            total += len(key) + len(entries[key].value) + 2
            if page and total > PAGE_BYTES:
                break
            page.append(key)
        worst = max(worst, time.perf_counter() - start)
        pages += 1
        if len(page) == len(rest):
            return pages, worst
        after = page[-1]


async def _one_page_pages(m: WorkingMemory) -> tuple[int, float]:
    pages, worst, after = 0, 0.0, None
    while True:
        start = time.perf_counter()
        page, more = await m.get_page("*", after, 100, PAGE_BYTES)
        worst = max(worst, time.perf_counter() - start)
        pages += 1
        if not more:
            return pages, worst
        after = list(page)[-1]


async def main(url: str) -> None:
    config = StoreConfig(
        key_prefix="wmbench-paging", limits=Limits(max_session_bytes=64 * 1024 * 1024)
    )
    store = SessionStore(backend_from_url(url, config, fallback=False), config)
    await store.start()
    sid = await store.open("bench")
    try:
        m = store.memory(sid, "bench")
        for i in range(KEYS):
            await m.set(f"key{i:04}", VALUE)
        for name, walk in (("whole session", _whole_session_pages), ("one page", _one_page_pages)):
            start = time.perf_counter()
            pages, worst = await walk(m)
            total = time.perf_counter() - start
            print(f"{url} {name}: {pages} pages, {total:.2f} s, worst page {worst * 1000:.1f} ms")
    finally:
        await store.close_session(sid, "bench")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))
