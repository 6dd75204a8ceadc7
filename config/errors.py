"""The one error a bad station or protocol file raises: every problem, each with its location."""
from __future__ import annotations


class ConfigError(ValueError):
    """A file failed validation. ``problems`` holds one "location: message" string per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


def format_pydantic_errors(exc) -> list[str]:
    """Turn a pydantic ValidationError into 'a.b[2].c: message' lines."""
    problems = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            else:
                loc += f".{part}" if loc else str(part)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and err["type"] not in ("missing",):
            msg = f"{msg} (got {err['input']!r})"
        problems.append(f"{loc or '<top>'}: {msg}")
    return problems
