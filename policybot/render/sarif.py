"""SARIF 2.1.0 for code-scanning CI (GitHub, GitLab): the findings of audit and check.

One run, tool ``policybot``, the rules the results use (from the catalogue),
one result per finding with its file and line. Acknowledged audit findings
are kept with a suppression, as SARIF says accepted ones should be.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..policy.rules import catalogue
from .findings import users_text

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# verdict -> SARIF level
LEVEL = {"violation": "error", "warning": "warning", "notice": "note", "info": "note"}


@dataclass(frozen=True)
class Result:
    rule: str
    verdict: str
    message: str
    path: str | None
    line: int | None
    suppressed: str = ""  # why, when the finding is acknowledged
    users: tuple[str, ...] = ()  # the kfunc's known users ("bpfilter 0.6.0 (strong)")
    users_text: str = ""  # the sentence about them
    logical: str = ""  # no line of the head to point at: the kfunc, as a logical location beside the file


def render(results: list[Result]) -> str:
    rules = catalogue()
    used = sorted({r.rule for r in results})
    index = {rid: i for i, rid in enumerate(used)}
    doc = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "policybot", "version": __version__,
                "informationUri": "https://docs.kernel.org/bpf/kfuncs.html",
                "rules": [{
                    "id": rid,
                    "shortDescription": {"text": rules[rid].summary},
                    "help": {"text": rules[rid].hint},
                    "properties": {"reference": rules[rid].reference},
                } for rid in used],
            }},
            "results": [_result(r, index) for r in results],
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


def _result(r: Result, index: dict[str, int]) -> dict:
    out = {"ruleId": r.rule, "ruleIndex": index[r.rule], "level": LEVEL.get(r.verdict, "note"),
           "message": {"text": r.message}, "properties": {"verdict": r.verdict}}
    if r.users:
        out["message"]["text"] += " " + r.users_text
        out["properties"]["users"] = list(r.users)
    if r.path:
        loc = {"artifactLocation": {"uri": _uri(r.path)}}
        if r.line:
            loc["region"] = {"startLine": r.line}
        out["locations"] = [{"physicalLocation": loc}]
        if r.logical:
            out["locations"][0]["logicalLocations"] = [{"name": r.logical, "kind": "function"}]
    if r.suppressed:
        out["suppressions"] = [{"kind": "external", "justification": r.suppressed}]
    return out


def _uri(path: str) -> str:
    """Relative to the working directory when under it: code scanning maps such paths to the checkout
    (clang records absolute file names in BTF line info)."""
    if os.path.isabs(path):
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            return Path(rel).as_posix()
    return Path(path).as_posix()


def _place(f) -> tuple[str | None, int | None, str, str]:
    """Where a result points in the checkout (the head): (path, line, what the message adds,
    logical). A finding located in the base only points at the head's line where its lines were
    (the hunk that removed them) and says where it was; without such a line it claims no line of
    the head: its file without a region (GitHub rejects a whole upload for one result without
    an artifact), the kfunc as a logical location, and the base's place in its message."""
    if not f.in_base:
        return (f.location.path, f.location.line, "", "") if f.location else (None, None, "", "")
    if f.hunk:
        return f.hunk.path, f.hunk.line, f" (was {f.was})", ""
    return f.base_location.path, None, f" (at {f.where})", f.kfunc or (f.members[0] if f.members else "")


def _results(findings) -> list[Result]:
    """A finding points at its file and line; a check finding without line info at its object."""
    out = []
    for f in findings:
        path, line, said, logical = _place(f)
        if f.object:
            what, path = f"{f.message} [{f.target}]", path or f.object
        elif f.grouped:  # one cause: every kfunc it reaches
            what = f"{', '.join(f.members)}: {f.message}" if f.members else f.message
        else:
            what = f"{f.kfunc} {f.message}" if f.kfunc else f.message
        out.append(Result(f.rule, f.verdict, what + said, path, line, f.acknowledged,
                          tuple(u.text() for u in f.users), users_text(f), logical))
    return out


def audit(result) -> str:
    """``policybot audit --format sarif``."""
    return render(_results(result.findings))


def review(reviewed) -> str:
    """``policybot review --format sarif``: every patch's findings."""
    return render(_results(reviewed.result.findings()))


def check(verdicts) -> str:
    """``policybot check --format sarif``."""
    return render(_results(f for v in verdicts for f in v.findings))
