"""The checkpoint snapshot: one JSON shape on every backend.

``{"s": session_id, "p": principal, "l": label or "", "c": created_ms,
"v": [[key, value_json, ttl_ms or -1], ...], "t": task_json or "", "x": [entry, ...]}``

(The Redis scripts build it with cjson, which encodes an empty array as ``{}``;
readers accept both.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Snapshot:
    session_id: str
    principal: str
    label: str | None
    created_ms: int
    variables: list[tuple[str, str, int | None]]
    task: str | None
    scratchpad: list[str]

    def to_json(self) -> str:
        return json.dumps(
            {
                "s": self.session_id,
                "p": self.principal,
                "l": self.label or "",
                "c": self.created_ms,
                "v": [[k, v, -1 if t is None else t] for k, v, t in self.variables],
                "t": self.task or "",
                "x": self.scratchpad,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        raw: dict[str, Any] = json.loads(text)
        variables = raw.get("v") or []
        pad = raw.get("x") or []
        return cls(
            session_id=str(raw["s"]),
            principal=str(raw["p"]),
            label=str(raw["l"]) or None,
            created_ms=int(raw["c"]),
            variables=[(str(k), str(v), None if int(t) < 0 else int(t)) for k, v, t in variables],
            task=str(raw["t"]) or None,
            scratchpad=[str(e) for e in pad],
        )
