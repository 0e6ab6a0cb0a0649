"""Build small git histories from file contents, with chosen dates and tags.

Used by the bundled sample tree and by the tests: one way to make a
repository that looks like a kernel tree, without a work tree.
"""

from __future__ import annotations

import datetime as dt
import os

import pygit2

AUTHOR = ("policybot sample", "sample@policybot.invalid")


def _time(when: str | dt.datetime) -> int:
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp())


class HistoryBuilder:
    """``b = HistoryBuilder(path); b.commit({...}, "msg", "2024-01-01"); b.tag("v6.1")``.

    ``files`` maps paths to bytes/str (None deletes); each commit starts from
    the previous commit's tree, so a commit lists only what changes.
    """

    def __init__(self, path: str | os.PathLike, bare: bool = False, branch: str = "master"):
        self.repo = pygit2.init_repository(os.fspath(path), bare=bare, initial_head=branch)
        self.branch = branch
        self.files: dict[str, bytes] = {}
        self.head: pygit2.Oid | None = None

    def commit(self, files: dict[str, bytes | str | None], message: str,
               when: str | dt.datetime = "2024-01-01T00:00:00", parents: list | None = None,
               author: tuple[str, str] = AUTHOR, replace: bool = False) -> pygit2.Oid:
        if replace:
            self.files = {}
        for path, content in files.items():
            if content is None:
                self.files.pop(path, None)
            else:
                self.files[path] = content.encode() if isinstance(content, str) else content
        tree = self._tree()
        sig = pygit2.Signature(author[0], author[1], _time(when), 0)
        if parents is None:
            parents = [self.head] if self.head is not None else []
        ref = f"refs/heads/{self.branch}"
        oid = self.repo.create_commit(None, sig, sig, message, tree, parents)
        self.repo.references.create(ref, oid, force=True)
        if self.repo.head_is_unborn:
            self.repo.set_head(ref)
        self.head = oid
        return oid

    def checkout(self) -> None:
        """Write HEAD's files and index (non-bare repositories): `git status` is then clean."""
        self.repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)

    def tag(self, name: str, target=None, when: str | dt.datetime | None = None,
            annotated: bool = True) -> None:
        target = target or self.head
        if annotated:
            t = _time(when) if when else self.repo[target].commit_time
            sig = pygit2.Signature(AUTHOR[0], AUTHOR[1], t, 0)
            self.repo.create_tag(name, target, pygit2.enums.ObjectType.COMMIT, sig, f"Linux {name}\n")
        else:
            self.repo.references.create(f"refs/tags/{name}", target)

    def _tree(self) -> pygit2.Oid:
        root: dict = {}
        for path, data in self.files.items():
            node = root
            parts = path.split("/")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = data
        return self._write(root)

    def _write(self, node: dict) -> pygit2.Oid:
        tb = self.repo.TreeBuilder()
        for name, value in sorted(node.items()):
            if isinstance(value, dict):
                tb.insert(name, self._write(value), pygit2.enums.FileMode.TREE)
            else:
                tb.insert(name, self.repo.create_blob(value), pygit2.enums.FileMode.BLOB)
        return tb.write()
