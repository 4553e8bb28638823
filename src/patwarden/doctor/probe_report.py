"""The results of ``patwarden doctor --probe``: verdicts, the report and its sanitised record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from patwarden.doctor.shapes import Observed, envelope_of, shape_of

RECORD_FORMAT = "patwarden-probe-shapes/1"


class Verdict(Enum):
    """How one probe went."""

    MATCH = "match"
    DIFFERS = "differs"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class ProbeResult:
    """One probe: what was asked, the verdict and, when it ran, the answer's shape."""

    probe: str
    request: str
    verdict: Verdict
    detail: str
    observed: Observed | None = None
    differences: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (shapes only)."""
        return {
            "probe": self.probe,
            "request": self.request,
            "result": self.verdict.value,
            "detail": self.detail,
            "differences": list(self.differences),
            "observed": self.observed.to_json() if self.observed else None,
        }


@dataclass(frozen=True)
class ProbeReport:
    """Every probe's result, in order."""

    results: tuple[ProbeResult, ...]

    def counts(self) -> dict[str, int]:
        """How many probes ended with each verdict."""
        return {v.value: sum(r.verdict is v for r in self.results) for v in Verdict}

    @property
    def exit_code(self) -> int:
        """0 everything matched (or was skipped), 1 a difference, 3 a probe could not run."""
        counts = self.counts()
        if counts["failed"]:
            return 3
        return 1 if counts["differs"] else 0

    def summary(self) -> str:
        """One line for the end of the table."""
        c = self.counts()
        line = f"{c['match']} match, {c['differs']} differ, {c['skipped']} skipped"
        line += f", {c['failed']} failed." if c["failed"] else "."
        if c["differs"]:
            line += " Attach `--record FILE` to a report: it holds shapes only, no values."
        return line

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON document."""
        return {
            "probes": [r.to_json() for r in self.results],
            "counts": self.counts(),
            "exit_code": self.exit_code,
        }

    def recording(self) -> dict[str, Any]:
        """The sanitised record written by ``--record`` (replayable through ``compare``)."""
        return {
            "format": RECORD_FORMAT,
            "probes": [
                {
                    "probe": r.probe,
                    "request": r.request,
                    "result": r.verdict.value,
                    "differences": list(r.differences),
                    "observed": r.observed.to_json() if r.observed else None,
                }
                for r in self.results
            ],
        }


def observe(response: httpx.Response) -> Observed:
    """The sanitised shape of *response* (its body is parsed, never kept)."""
    raw = response.content
    body: Any = None
    if raw.strip() and "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    content_type = response.headers.get("content-type", "")
    envelope = envelope_of(response.status_code, content_type, body, raw=raw)
    names = tuple(sorted({name.lower() for name in response.headers}))
    shape = shape_of(body) if body is not None else None
    return Observed(status=response.status_code, envelope=envelope, body=shape, headers=names)
