"""Which tools a server lists: the names, the groups a host picks with ``WM_TOOLS``.

A module without imports of its own, so that ``settings`` can check ``WM_TOOLS``
against the names while ``tools`` (which imports ``settings``) builds them.
"""

from __future__ import annotations

TOOL_NAMES = (
    "memory_set",
    "memory_get",
    "memory_delete",
    "memory_exists",
    "memory_list_keys",
    "memory_get_all",
    "memory_clear",
    "task_state_set",
    "task_state_get",
    "scratchpad_append",
    "scratchpad_get",
    "checkpoint_create",
    "checkpoint_restore",
    "checkpoint_list",
    "checkpoint_delete",
    "session_open",
    "session_close",
    "session_info",
)

ALWAYS = (
    "memory_set",
    "memory_get",
    "scratchpad_append",
    "checkpoint_create",
    "checkpoint_restore",
    "session_open",
)
"""Listed whatever ``WM_TOOLS`` says: the working-memory loop a model relies on, and
``session_open``, without which a stateless (2026-07-28) client can call none of them."""

GROUPS: dict[str, tuple[str, ...]] = {
    # The default, chosen by measurement (tests/server/test_tool_budget.py): name,
    # description and input schema of every listed tool within 4.5 KB of compact JSON.
    # Variables, notes and checkpoints can each be written, found and read back, and a
    # stateless client can open a session; task state (task_state_*, 1.1 KB) and the
    # rest are one WM_TOOLS=all away.
    "core": (
        *ALWAYS,
        "memory_delete",
        "memory_list_keys",
        "scratchpad_get",
        "checkpoint_list",
    ),
    "all": TOOL_NAMES,
}


def select_tools(spec: str) -> tuple[str, ...]:
    """The tools ``spec`` lists, in ``TOOL_NAMES`` order (``ALWAYS`` included).

    Args:
        spec: comma-separated group names (``core``, ``all``) and tool names, any case.

    Raises:
        ValueError: a word that is neither a group nor a tool.
    """
    chosen = set(ALWAYS)
    for word in (w.strip().lower() for w in spec.split(",")):
        if word in GROUPS:
            chosen.update(GROUPS[word])
        elif word in TOOL_NAMES:
            chosen.add(word)
        elif word:
            raise ValueError(f"no tool or group named {word[:64]!r}")
    return tuple(name for name in TOOL_NAMES if name in chosen)
