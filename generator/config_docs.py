"""Settings dataclasses document themselves: the comment above each field is its help."""

from __future__ import annotations

import dataclasses
import inspect
import re


def field_docs(cls) -> dict[str, str]:
    """Map each dataclass field to the comment line(s) directly above it in the source."""
    lines = inspect.getsource(cls).splitlines()
    docs, pending = {}, []
    names = {f.name for f in dataclasses.fields(cls)}
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            pending.append(text.lstrip("# ").strip())
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match and match.group(1) in names:
            docs[match.group(1)] = " ".join(pending)
        pending = []
    return docs


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")
