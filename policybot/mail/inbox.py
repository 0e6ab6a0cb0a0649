"""The public-inbox server, over HTTP with deadlines (issue 22).

Two requests, as public-inbox serves them (public-inbox-httpd(1), PublicInbox::WWW):
a thread as ``GET <inbox>/<msgid>/t.mbox.gz`` and a search as
``POST <inbox>/?q=<query>&x=m&t=1`` (whole threads), both a gzipped mbox; a search that
matches nothing is a 404. What comes back is parsed by b4 (b4wrap), never fetched by it.

Requests go through mail/http.py (deadlines per request and per run, a drip cut off,
redirects only within the configured origin, the body read within
limits.max_input_bytes); a gzipped body is inflated within
limits.max_decompressed_bytes. Anything but a 2xx is an ``InboxError``, which the weekly
run records: an unreachable server is a failure, never a quiet week.
"""

from __future__ import annotations

import urllib.parse

from .. import bounded
from .http import HttpClient, HttpError, HttpLimits

__all__ = ["HttpLimits", "Inbox", "InboxError"]


class InboxError(HttpError):
    """The server did not give what was asked (no answer in time, a non-2xx status, a redirect elsewhere)."""


class Inbox(HttpClient):
    """One public-inbox (``https://lore.kernel.org/bpf``) for one command or run."""

    error = InboxError
    what = "a public-inbox"

    def thread(self, msgid: str) -> bytes | None:
        """The mbox of ``msgid``'s thread, or None when the server has no such message."""
        return self._mbox("GET", f"{self.url}/{urllib.parse.quote(msgid, safe='@!$&*+=~')}/t.mbox.gz")

    def search(self, query: str) -> bytes:
        """The mbox of the whole threads of the messages matching ``query`` (b"" for none)."""
        url = f"{self.url}/?x=m&t=1&q={urllib.parse.quote_plus(query)}"
        return self._mbox("POST", url, b"x=m") or b""

    def _mbox(self, method: str, url: str, body: bytes | None = None) -> bytes | None:
        answer = self.follow(method, url, body)
        status, data, final = answer.status, answer.data, answer.url
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise InboxError(f"{final}: HTTP {status}: the server did not answer with the mbox")
        if data[:2] == b"\x1f\x8b":
            return bounded.inflate("gzip", data, final, members=True)
        return data
