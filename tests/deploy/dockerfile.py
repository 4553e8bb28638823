"""A small reader of Dockerfiles: instructions (continuations joined), stages, ENV values.

Enough for the checks in test_container.py; not a general parser (no heredocs, no escape
directive).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, …
    arguments: str  # as written, continuations joined with a space
    line: int  # where it starts (1-based)

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, else None (shell form)."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                values[name] = value
        return values


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) with their defaults
    stages: list[Stage]
    text: str

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def between(self, start: str, end: str) -> list[Instruction]:
        """Instructions between two marker comments (by line)."""
        lines = self.text.splitlines()
        first = next(n for n, line in enumerate(lines, 1) if start in line)
        last = next(n for n, line in enumerate(lines, 1) if end in line)
        return [i for s in self.stages for i in s.instructions if first < i.line < last]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    joined: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not current:
            start = number
        if line.endswith("\\"):
            current.append(line[:-1].strip())
            continue
        current.append(line)
        joined.append((start, " ".join(part for part in current if part)))
        current = []
    return joined


def parse(path: Path) -> Dockerfile:
    text = path.read_text()
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        instruction = Instruction(keyword.upper(), rest.strip(), number)
        if instruction.keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        elif not stages and instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
        elif stages:
            stages[-1].instructions.append(instruction)
    return Dockerfile(args=args, stages=stages, text=text)
