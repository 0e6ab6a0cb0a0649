"""What the operator's commands print: a weekly run's summary, the outbox, a send, the
schedule, a drafted notice, the doctor's findings. Text (read on a terminal or in the
journal), and JSON for the doctor (read by monitoring)."""

from __future__ import annotations

import json

from ..model.vocabulary import RunStatus


def run_text(ran) -> str:
    """(runner, summary) of ``policybot run``: a line per tree, then reviews, failures, mail."""
    runner, summary = ran
    out = [] if summary.census is None else [f"census: {summary.census} use{'s' if summary.census != 1 else ''} "
                                              f"of kfuncs kept"]
    for t in summary.trees:
        rng = f"{t.base[:12]}..{t.head[:12]}" if t.base else (t.head[:12] if t.head else "-")
        counts: dict[str, int] = {}
        for f in t.findings:
            if f.counts:
                counts[f.verdict] = counts.get(f.verdict, 0) + 1
        # a tree that could not be read has no findings to count: it says so
        unread = t.status in (RunStatus.ERROR, RunStatus.FETCH_FAILED) and not t.head
        what = "could not be read" if unread else _counts(counts)
        out.append(f"{t.tree}: {t.status} {rng}: {what}" + (f" ({t.detail})" if t.detail else ""))
    # an inbox series: the tree it was judged on, how it was routed there, what was found
    out += [f"reviewed: {s.tree}: {s.subject} (by {s.how}): {_counts(s.counts)}; "
            f"{s.replies} repl{'y' if s.replies == 1 else 'ies'}" for s in summary.reviewed]
    out += [f"skipped: {s.what}: {s.reason}" for s in summary.skipped]
    if summary.reviewed or summary.skipped or summary.unrelated:  # the inbox in one line: series, trees, skips
        per_tree: dict[str, int] = {}
        for s in summary.reviewed:
            per_tree[s.tree] = per_tree.get(s.tree, 0) + 1
        series = len({s.subject for s in summary.reviewed})
        out.append(f"inbox: {series} series reviewed" +
                   (f" ({', '.join(f'{t}: {n}' for t, n in sorted(per_tree.items()))})" if per_tree else "") +
                   f", {len(summary.skipped)} skipped" +
                   (f", {summary.unrelated} for no tree and touching no kfunc" if summary.unrelated else ""))
    out += [f"failed: {failure.what}: {failure.reason}" for failure in summary.failures]
    if summary.checked:
        out.append(f"patchwork: {len(summary.checked)} check{'s' if len(summary.checked) != 1 else ''} posted")
    out.append(f"drafted {len(summary.queued)} mail{'s' if len(summary.queued) != 1 else ''} to "
               f"{runner.outbox.maildir}" + (f"; sent {len(summary.sent)}, failed {len(summary.send_failed)}"
                                            if summary.sent or summary.send_failed else ""))
    return "\n".join(out) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no findings"


def sent_text(report) -> str:
    """A SendReport of ``policybot outbox --send``."""
    out = [f"sent    {msgid}" for msgid in report.sent]
    out += [f"failed  {failure.msgid}: {failure.error}" for failure in report.failed]
    return "".join(line + "\n" for line in out)


def outbox_text(listing) -> str:
    """(maildir, pending rows, failures) of ``policybot outbox``."""
    maildir, rows, failures = listing
    out = []
    for row in rows:
        why = f"\n        {row.last_error}" if row.last_error else ""
        wait = f" (next try after {row.next_attempt:%Y-%m-%d %H:%M} UTC)" if row.next_attempt else ""
        out.append(f"{row.status:7} {row.kind:7} {row.msgid}  {row.subject}{wait}{why}")
    out.append(f"{len(rows)} queued in {maildir}")
    for f in failures:  # trees and inbox messages `run` could not process
        out.append(f"failed  {f.kind} {f.key}: {f.reason} ({f.day}; `run --retry-failed` tries again)")
    return "\n".join(out) + "\n"


def schedule_text(runs) -> str:
    """(job id, next run or None, trigger) of ``policybot schedule --list``."""
    return "".join(f"{job_id:8} {when.isoformat() if when else 'never':28} {trigger}\n"
                   for job_id, when, trigger in runs)


def notice_text(drafted) -> str:
    """(draft, maildir) of ``policybot notice``."""
    draft, maildir = drafted
    return (f"Subject: {draft.subject}\nTo: {', '.join(draft.to)}\nCc: {', '.join(draft.cc)}\n\n"
            f"{draft.body}\ndrafted to {maildir}\n")


def doctor_text(results) -> str:
    """The CheckResults of ``policybot doctor``: a line each (problems marked), then the count."""
    out = [f"{'PROBLEM' if r.status == 'problem' else r.status:8} {r.check}: {r.detail}" for r in results]
    problems = sum(r.status == "problem" for r in results)
    out.append(f"{problems} problem{'s' if problems != 1 else ''}" + (": fix each line marked PROBLEM, then "
                                                                       "run policybot doctor again"
                                                                       if problems else ": ready to run"))
    return "\n".join(out) + "\n"


def doctor_json(results) -> str:
    checks = [{"check": r.check, "status": str(r.status), "detail": r.detail} for r in results]
    return json.dumps({"problems": sum(r.status == "problem" for r in results), "checks": checks}, indent=2) + "\n"
