"""The one error a bad station or protocol file raises: every problem, each with its location."""
from __future__ import annotations

import math


class ConfigError(ValueError):
    """A file failed validation. ``problems`` holds one "location: message" string per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


def format_pydantic_errors(exc, tags: frozenset[str] = frozenset()) -> list[str]:
    """Turn a pydantic ValidationError into 'a.b[2].c: message' lines.

    ``tags`` are discriminator values (step kinds) that pydantic puts into locations of tagged
    unions; they are dropped so that a location reads as the file does (``steps[0].soak_s``).
    """
    problems = []
    for err in exc.errors():
        loc = ""
        parts = list(err["loc"])
        for k, part in enumerate(parts):
            if k > 0 and isinstance(parts[k - 1], int) and part in tags:
                continue
            if isinstance(part, int):
                loc += f"[{part}]"
            else:
                loc += f".{part}" if loc else str(part)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and err["type"] not in ("missing",) \
                and not isinstance(err["input"], (dict, list)):
            # A whole table as "input" repeats the file; the message names what is wrong.
            msg = f"{msg} (got {err['input']!r})"
        problems.append(f"{loc or '<top>'}: {msg}")
    return problems


def reject_non_finite(value, *, where: str = ""):
    """Free-form tables (simulator overrides, fault settings) hold numbers too: refuse NaN and
    infinities in them as the models do; returns ``value`` unchanged for a pydantic validator."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'value'}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            reject_non_finite(item, where=f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_non_finite(item, where=f"{where}[{index}]")
    return value
