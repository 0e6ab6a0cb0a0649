"""The release calendar: releases, when a declaration first appeared, when windows end,
and the two date rules of the policy (the stable window, the earliest removal), once.

A release is a tag ``v<major>.<minor>`` (no -rc). The promise date of a
declaration is the first release containing the commit that introduced it
(or that commit's date, policy ``date_from = "commit"``). Results are
cached by commit id (policybot/cache.py), so a weekly run does not walk
history again.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Callable

import pygit2

from ..model.promises import Promise, PromiseDate, Release, WindowEnd
from ..model.vocabulary import Level, PromiseState
from .config import Policy, Window

if TYPE_CHECKING:
    from ..cache import Cache

RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)$")
DAYS_PER_RELEASE = 63  # ~9 weeks: estimates windows counted in releases not yet made


def release_number(name: str | None) -> tuple[int, int] | None:
    """(major, minor) of a release tag's name, "v7.2" -> (7, 2); None for any other name."""
    m = RELEASE_TAG.match(name or "")
    return (int(m[1]), int(m[2])) if m else None


def _date(ts: int, offset_min: int = 0) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone(dt.timedelta(minutes=offset_min))).date()


class ReleaseCalendar:
    """The release tags of one repository, and the dates of promises counted on them."""

    def __init__(self, repo: pygit2.Repository, cache: Cache | None = None):
        self.repo = repo
        self.cache = cache
        self.key = repo.path
        self._releases: list[Release] | None = None
        self._chains: dict[str, list[str]] = {}

    @property
    def shallow(self) -> bool:
        return self.repo.is_shallow

    def releases(self) -> list[Release]:
        if self._releases is None:
            out = []
            for ref in self.repo.references.iterator(pygit2.enums.ReferenceFilter.TAGS):
                name = ref.shorthand
                if not RELEASE_TAG.match(name):
                    continue
                obj = self.repo[ref.target]
                if isinstance(obj, pygit2.Tag):
                    when = _date(obj.tagger.time, obj.tagger.offset) if obj.tagger else None
                    commit = obj.peel(pygit2.Commit)
                    when = when or _date(commit.commit_time, commit.commit_time_offset)
                else:
                    commit = obj.peel(pygit2.Commit)
                    when = _date(commit.commit_time, commit.commit_time_offset)
                out.append(Release(name, str(commit.id), when))
            out.sort(key=lambda r: (r.date, release_number(r.name)))
            self._releases = out
        return self._releases

    def release_numbers(self) -> set[tuple[int, int]]:
        """(major, minor) of every release tag."""
        return {release_number(r.name) for r in self.releases()}

    def release_of_commit(self, commit: pygit2.Commit) -> tuple[int, int] | None:
        """The release a commit belongs to: what its tree's Makefile says (an -rc says the coming
        release); without one, a release's own commit, else the release after the newest one it
        contains."""
        from ..kernel.ledger import release_of, tree_release
        said = tree_release(self.repo, commit)
        if said:
            return said
        commit_id = str(commit.id)
        tags = self.release_numbers()
        below = None
        for r in self.releases():
            number = release_number(r.name)
            if r.commit == commit_id:
                return number
            if self.repo.descendant_of(commit_id, r.commit) and (below is None or number > below):
                below = number
        return release_of(below[0], below[1] + 1, tags) if below else None

    def release_named(self, name: str) -> Release | None:
        return next((r for r in self.releases() if r.name == name), None)

    def commit_date(self, commit_id: str) -> dt.date:
        c = self.repo[commit_id]
        return _date(c.commit_time, c.commit_time_offset)

    def first_release_containing(self, commit_id: str) -> Release | None:
        cached = self.cache.get_cached(self.key, "release-of:" + commit_id) if self.cache else None
        if cached is not None:
            return Release(*cached[:2], dt.date.fromisoformat(cached[2])) if cached else None
        found = None
        target = pygit2.Oid(hex=commit_id)
        for rel in self.releases():
            tip = pygit2.Oid(hex=rel.commit)
            if tip == target or self.repo.descendant_of(tip, target):
                found = rel
                break
        if self.cache:
            self.cache.put_cached(self.key, "release-of:" + commit_id,
                                  [found.name, found.commit, found.date.isoformat()] if found else [])
        return found

    def first_parent_chain(self, head: str) -> list[str]:
        """head, its first parent, ... oldest last."""
        if head not in self._chains:
            chain = []
            walker = self.repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.NONE)
            walker.simplify_first_parent()
            for c in walker:
                chain.append(str(c.id))
            self._chains[head] = chain
        return self._chains[head]

    def introduced(self, head: str, holds: Callable[[str], bool], cache_key: str) -> str:
        """The oldest commit on head's first-parent line from which ``holds`` is true through head.

        Binary search: assumes the property, once added, stays (a declaration
        that was removed and re-added dates from its last addition only if the
        search lands there; the common case is monotonic).
        """
        key = f"introduced:{cache_key}@{head}"
        cached = self.cache.get_cached(self.key, key) if self.cache else None
        if cached:
            return cached
        chain = self.first_parent_chain(head)
        lo, hi = 0, len(chain) - 1  # holds(chain[0]) is known true
        if holds(chain[hi]):
            lo = hi
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if holds(chain[mid]):
                    lo = mid
                else:
                    hi = mid
        if self.cache:
            self.cache.put_cached(self.key, key, chain[lo])
        return chain[lo]

    def promise_date(self, commit_id: str, date_from: str) -> PromiseDate:
        if self.shallow:
            return PromiseDate(self.commit_date(commit_id), None, commit_id,
                               "fallback: shallow clone, commit date")
        if date_from == "commit":
            return PromiseDate(self.commit_date(commit_id), None, commit_id, "commit")
        rel = self.first_release_containing(commit_id)
        if rel is None:
            how = "fallback: no release tag contains it, commit date" if self.releases() else \
                "fallback: no release tags, commit date"
            return PromiseDate(self.commit_date(commit_id), None, commit_id, how)
        return PromiseDate(rel.date, rel.name, commit_id, "release")

    def since(self, value: str) -> PromiseDate | None:
        """A ``since:`` override: a release tag or an ISO date."""
        rel = self.release_named(value)
        if rel:
            return PromiseDate(rel.date, rel.name, None, "since")
        try:
            return PromiseDate(dt.date.fromisoformat(value), None, None, "since")
        except ValueError:
            return None

    def window_end(self, start: dt.date, window: Window) -> WindowEnd:
        """The later of duration and release count ("whichever is longer")."""
        end, estimated = add_months(start, window.months) + dt.timedelta(days=window.days), False
        if window.releases:
            later = [r for r in self.releases() if r.date > start]
            if len(later) >= window.releases:
                by_releases = later[window.releases - 1].date
                est = False
            else:
                last = later[-1].date if later else start
                by_releases = last + dt.timedelta(days=DAYS_PER_RELEASE * (window.releases - len(later)))
                est = True
            if by_releases > end:
                end, estimated = by_releases, est
        return WindowEnd(end, estimated)

    # -- the policy's two date rules ----------------------------------------------------

    def stable_end(self, since: dt.date, policy: Policy) -> WindowEnd:
        """A stable promise made on ``since`` holds until this day."""
        return self.window_end(since, policy.stable_window)

    def deprecation_end(self, deprecated_on: dt.date, policy: Policy,
                        stable_since: dt.date | None = None) -> WindowEnd:
        """The one rule for when a deprecated kfunc may go: the notice period from
        ``deprecated_on``, and never before a stable promise made on ``stable_since`` ends."""
        end = self.window_end(deprecated_on, policy.notice_period)
        if stable_since is not None:
            stable = self.stable_end(stable_since, policy)
            if stable.date > end.date:
                end = stable
        return end

    def stable_span(self, policy: Policy, promise: Promise | None) -> tuple[dt.date | None, dt.date | None]:
        """When the kfunc's stable promise began and when it ends: its own, or, for a kfunc
        deprecated since, the one its declaration made before; (None, None) if it never had one."""
        if promise is None:
            return None, None
        level = promise.declaration.level
        if level == Level.STABLE and promise.since and promise.ends:
            return promise.since.date, promise.ends.date
        if level in (Level.DEPRECATING, Level.DEPRECATED) and promise.stable_since:
            since = promise.stable_since.date
            return since, self.stable_end(since, policy).date
        return None, None

    def earliest_removal(self, deprecated_on: dt.date, policy: Policy, promise: Promise | None) -> dt.date:
        """A kfunc deprecated on ``deprecated_on`` may go on this day: the deprecation end
        from that day, never before a declared deprecation's own end or a stable promise's."""
        stable_since, _ = self.stable_span(policy, promise)
        end = self.deprecation_end(deprecated_on, policy, stable_since).date
        if promise and promise.level_key in (PromiseState.DEPRECATED, PromiseState.DEPRECATED_DUE) and promise.ends:
            end = max(end, promise.ends.date)
        return end


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")
