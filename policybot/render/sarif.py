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
    return _identified(render(_results(result.findings)), list(result.findings), "audit")


def review(reviewed) -> str:
    """``policybot review --format sarif``: every patch's findings."""
    findings = list(reviewed.result.findings())
    return _identified(render(_results(findings)), findings, "review")


def _identified(text: str, findings: list, command: str) -> str:
    """``text`` (one run) with its code-scanning category and a fingerprint per result of what it
    is about (rule, kfunc, file), never of its line: stable while the code moves."""
    doc = json.loads(text)
    body = doc["runs"][0]
    body["automationDetails"] = {"id": f"policybot/{command}/"}
    for out, f in zip(body["results"], findings):
        loc = f.location
        out["partialFingerprints"] = {"policybotFinding/v1": fingerprint(
            f.rule, f.kfunc or "", _uri(loc.path) if loc else "")}
    return json.dumps(doc, indent=2) + "\n"


def check(run, fail_on: str = "violation") -> str:
    """``policybot check --format sarif``: one run per target, each with its code-scanning
    category (``runAutomationDetails.id`` "policybot/check/TARGET/"), so that a scan of one
    kernel never closes another's alerts; dead fallbacks (about all targets) in a run of their
    own. Each result has a fingerprint of what it is about (rule, object, extern, target), not of
    where or when: a later run of the same input has the same ones. Notes (info and notice
    verdicts) only when ``fail_on`` asks for them."""
    keep = _kept(fail_on)
    runs: dict[str, list] = {}
    # a compiled kernel by what it is, not by how its path was written
    idents = {v.target.name: v.target.ident or v.target.name for v in run.results}
    containers = {v.object.path: v.object.container for v in run.results if v.object.container}
    for v in run.results:
        runs.setdefault(idents[v.target.name], []).extend(f for f in v.findings if keep(f.verdict))
    if run.findings:
        runs.setdefault("all-targets", []).extend(f for f in run.findings if keep(f.verdict))
    doc = json.loads(render([]))
    doc["runs"] = [_check_run(target, findings, idents, containers) for target, findings in runs.items()]
    return json.dumps(doc, indent=2) + "\n"


def _kept(fail_on: str):
    """Which verdicts a check's SARIF keeps: warnings and violations, and notes only when
    ``fail_on`` is notice or info (a note at "never" or "warning" is noise in code scanning)."""
    from ..model.vocabulary import severity
    floor = min(severity(fail_on), severity("warning")) if fail_on != "never" else severity("warning")
    return lambda verdict: severity(verdict) >= floor


def _check_run(target: str, findings: list, idents: dict[str, str], containers: dict[str, str]) -> dict:
    """An object cut out of a program or package is named (logical location, kind "module") and so
    is the file holding it: the artifact of a result without line info, and a property."""
    results = _results(findings)
    body = json.loads(render(results))["runs"][0]
    body["automationDetails"] = {"id": f"policybot/check/{target}/"}
    for out, f in zip(body["results"], findings):
        if (container := containers.get(f.object)) and "locations" in out:
            loc = out["locations"][0]
            if not f.location:  # no line info: the result points at the file given, not at a made-up path
                loc["physicalLocation"]["artifactLocation"]["uri"] = _uri(container)
            loc.setdefault("logicalLocations", []).append({"name": f.object, "kind": "module"})
            out["properties"]["container"] = _uri(container)
        out["partialFingerprints"] = {"policybotFinding/v1": fingerprint(
            f.rule, _uri(f.object) if f.object else "", f.kfunc or "", idents.get(f.target, f.target or target))}
    return body


def fingerprint(*parts: str) -> str:
    """A stable identity for code scanning: the sha256 of what a finding is about."""
    import hashlib
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
