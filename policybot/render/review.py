"""A series' review (``policybot review``): per patch, whether it applied and its findings.

Renders app/review.py's ``Reviewed`` (the use case's result, with what was drafted)."""

from __future__ import annotations

import json

from .findings import finding_json, finding_line, users_text


def _unsent(reviewed) -> list[str]:
    return [f"no reply drafted to {r.subject!r}: {r.reason}" for r in reviewed.refused]


def text(reviewed) -> str:
    result, series, queued = reviewed.result, reviewed.result.series, reviewed.queued
    out = [f"policybot: note: {note}" for note in result.notes + _unsent(reviewed)]
    for r in result.reviews:
        status = "applied" if r.applied else "skipped: the series touches no kfunc code" if r.skipped else \
            f"could not apply {r.patch.counter}/{r.patch.expected} on {result.base_rev}: {r.problem}"
        out.append(f"{r.patch.subject}: {status}")
        for f in r.findings:
            out.append(f"  {finding_line(f)}")
            if f.users:
                out.append(f"      users: {users_text(f)}")
    out += [f"policybot: note: {note}" for note in _unsent(reviewed)]
    n, np = len(result.findings()), len(result.reviews)
    out.append(f"review of {series.subject!r} (v{series.revision}, {np} patch{'es' if np != 1 else ''}) on "
               f"{result.base_rev}: {n} finding{'s' if n != 1 else ''}; drafted {len(queued)} "
               f"mail{'s' if len(queued) != 1 else ''} to {reviewed.outbox}")
    if reviewed.sent is not None:
        out.append(f"sent {len(reviewed.sent.sent)}, failed {len(reviewed.sent.failed)}")
    if (c := reviewed.checks) is not None:
        out.append(f"patchwork: {len(c.posted)} check{'s' if len(c.posted) != 1 else ''} posted, "
                   f"{len(c.unchanged)} unchanged" + (f", {len(c.unknown)} patch{'es' if len(c.unknown) != 1 else ''}"
                                                      " not on the server" if c.unknown else ""))
    return "\n".join(out) + "\n"


def json_text(reviewed) -> str:
    result, series = reviewed.result, reviewed.result.series
    return json.dumps({
        "schema": 1, "series": {"subject": series.subject, "revision": series.revision,
                                "author": series.author, "missing": series.missing},
        "base": {"rev": result.base_rev, "commit": result.base_commit, "how": result.base_how},
        "notes": result.notes + _unsent(reviewed),
        "patches": [{"msgid": r.patch.msgid, "subject": r.patch.subject, "applied": r.applied, "skipped": r.skipped,
                     "problem": r.problem or None, "files": list(r.files),
                     "findings": [finding_json(f) for f in r.findings]} for r in result.reviews],
        "drafted": reviewed.queued, "outbox": str(reviewed.outbox),
        **({"checks": {"posted": c.posted, "unchanged": c.unchanged, "unknown": c.unknown,
                       "failure": c.failure or None}} if (c := reviewed.checks) is not None else {}),
    }, indent=2) + "\n"
