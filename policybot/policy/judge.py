"""The one judge: the only code that turns a rule and a promise into a verdict.

A verdict is the catalogue's (rules.toml: by the kfunc's promise state at the
base), unless the policy's ``[verdicts]`` table overrides it; a violation is
then acknowledged by an entry of the policy's allowlist, or by a
Kfunc-Break-Acked-by tag of a maintainer of the kfunc's files. audit, review
and check all ask this module, so a policy means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from ..model.census import KnownUser, essential_name
from ..model.findings import Acknowledgement, Finding
from ..model.inventory import Location
from ..model.promises import Problem, Promise
from ..model.vocabulary import AckKind, PromiseState, Verdict
from .config import Policy
from .rules import catalogue


@dataclass(frozen=True)
class Ack:
    """A Kfunc-Break-Acked-by tag: who gave it, for which changed files, where it was given."""
    name: str
    address: str
    files: frozenset[str]  # the files the acked change touches
    tree: object  # the pygit2.Tree whose MAINTAINERS says who may ack: the base, never the acking change
    where: str  # a commit id, or "a reply from ... to patch 2/5"


# (tree, files) -> the addresses of the files' maintainers, or None when the tree has no MAINTAINERS
MaintainersOf = Callable[[object, list[str]], "set[str] | None"]


class Judge:
    def __init__(self, policy: Policy, today: dt.date, users: Mapping[str, tuple[KnownUser, ...]] | None = None):
        self.policy = policy
        self.today = today
        self.users = users or {}  # kfunc -> its out-of-tree users (policybot census)

    def verdict(self, rule: str, state: PromiseState) -> Verdict:
        return self.policy.verdict_overrides.get(rule) or catalogue()[rule].verdict[state]

    def finding(self, rule: str, kfunc: str, message: str, base: Location | None, head: Location | None,
                promise: Promise | None, state: PromiseState | None = None, **extra) -> Finding | None:
        """The finding of ``rule`` about ``kfunc`` with its promise (None: undeclared), or None
        when the rule says nothing at that promise state. ``state``: the promise state where
        the promise itself is not at hand (check's targets); ``extra``: check's object and target."""
        if state is None:
            state = promise.level_key if promise else PromiseState.UNSTABLE
        verdict = self.verdict(rule, state)
        if verdict == Verdict.NONE:
            return None
        return Finding(rule, kfunc, verdict, message, head or base, base, head, promise, catalogue()[rule].hint,
                       users=self.users.get(essential_name(kfunc), ()) if kfunc else (), **extra)

    def problem(self, p: Problem) -> Finding:
        """A declaration problem: judged as about an undeclared kfunc (its declaration is the problem)."""
        message = p.message.removeprefix(f"{p.kfunc}: ") if p.kfunc else p.message
        return Finding(p.rule, p.kfunc, self.verdict(p.rule, PromiseState.UNSTABLE), message, p.location, None,
                       p.location, None, catalogue()[p.rule].hint)

    def acknowledge(self, f: Finding, acks: list[Ack], files: set[str], maintainers_of: MaintainersOf) -> Finding:
        """``f`` with the acknowledgement that accepts it, if any: an allowlist entry for its kfunc
        and rule that has not expired, else a tag on a change to ``files`` (the kfunc's) whose
        author maintains the files it acks. Expired entries and tags that do not count are notes."""
        if f.verdict != Verdict.VIOLATION:
            return f
        for entry in self.policy.allow:
            if entry.kfunc == f.kfunc and entry.rule == f.rule:
                if self.today <= entry.expires:
                    return replace(f, ack=Acknowledgement(AckKind.ALLOWLIST, reason=entry.reason, until=entry.expires,
                                                          source=f"{self.policy.path}:{entry.line}"))
                f = replace(f, notes=f.notes + (f"allowlist entry {self.policy.path}:{entry.line} expired "
                                                f"on {entry.expires}",))
        for ack in acks:
            if not files & ack.files:
                continue
            maintainers = maintainers_of(ack.tree, sorted(files & ack.files))
            if maintainers is not None and ack.address.lower() not in maintainers:
                f = replace(f, notes=f.notes + (f"the Kfunc-Break-Acked-by tag of {ack.name} <{ack.address}> in "
                                                f"{ack.where} does not count: not a maintainer of the kfunc's files",))
                continue
            return replace(f, ack=Acknowledgement(AckKind.TAG, name=ack.name, address=ack.address, where=ack.where))
        return f
