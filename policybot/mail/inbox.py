"""The public-inbox server, over HTTP with deadlines (issue 22).

Two requests, as public-inbox serves them (public-inbox-httpd(1), PublicInbox::WWW):
a thread as ``GET <inbox>/<msgid>/t.mbox.gz`` and a search as
``POST <inbox>/?q=<query>&x=m&t=1`` (whole threads), both a gzipped mbox; a search that
matches nothing is a 404. What comes back is parsed by b4 (b4wrap), never fetched by it.

Every request has a connect limit and a deadline from its first byte to its last, and all
requests of one ``Inbox`` (one command, one weekly run) share a deadline too: a server that
drips a byte a second is cut off at the deadline, by a timer that shuts the socket, since a
per-read timeout never fires on a drip. Redirects are followed only within the configured
origin (scheme, host, port). The body is read within limits.max_input_bytes and inflated
within limits.max_decompressed_bytes. Anything but a 2xx is an ``InboxError``, which the
weekly run records: an unreachable server is a failure, never a quiet week.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

from .. import bounded
from ..errors import InputError

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


class InboxError(InputError):
    """The server did not give what was asked (no answer in time, a non-2xx status, a redirect elsewhere)."""


@dataclass(frozen=True)
class HttpLimits:
    connect_seconds: float = 10
    request_seconds: float = 60
    run_seconds: float = 300


def _origin(url: urllib.parse.SplitResult) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, (url.hostname or "").lower(), port


class Inbox:
    """One public-inbox (``https://lore.kernel.org/bpf``) for one command or run."""

    def __init__(self, url: str, limits: HttpLimits = HttpLimits(), user_agent: str = "policybot"):
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{url}: not an http(s) URL of a public-inbox")
        self.origin = _origin(parts)
        self.limits = limits
        self.user_agent = user_agent
        self.run_deadline = time.monotonic() + limits.run_seconds

    def thread(self, msgid: str) -> bytes | None:
        """The mbox of ``msgid``'s thread, or None when the server has no such message."""
        return self._mbox("GET", f"{self.url}/{urllib.parse.quote(msgid, safe='@!$&*+=~')}/t.mbox.gz")

    def search(self, query: str) -> bytes:
        """The mbox of the whole threads of the messages matching ``query`` (b"" for none)."""
        url = f"{self.url}/?x=m&t=1&q={urllib.parse.quote_plus(query)}"
        return self._mbox("POST", url, b"x=m") or b""

    def _mbox(self, method: str, url: str, body: bytes | None = None) -> bytes | None:
        status, data, final = self._follow(method, url, body)
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise InboxError(f"{final}: HTTP {status}: the server did not answer with the mbox")
        if data[:2] == b"\x1f\x8b":
            return bounded.inflate("gzip", data, final, members=True)
        return data

    def _follow(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes, str]:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, data = self._request(method, url, body)
            if status not in REDIRECTS or not location:
                return status, data, url
            target = urllib.parse.urljoin(url, location)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme not in ("http", "https") or _origin(parts) != self.origin:
                raise InboxError(f"{url}: redirected to {parts.scheme}://{parts.netloc}, outside "
                                 f"{self.origin[0]}://{self.origin[1]}:{self.origin[2]}: not followed")
            if status == 303:
                method, body = "GET", None
            url = target
        raise InboxError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _request(self, method: str, url: str, body: bytes | None) -> tuple[int, str, bytes]:
        now = time.monotonic()
        remaining = min(self.limits.request_seconds, self.run_deadline - now)
        deadline = now + remaining
        if remaining <= 0:
            raise InboxError(f"{url}: not asked: this run's requests took limits.http_run_seconds "
                             f"({self.limits.run_seconds:g} s)")
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=min(self.limits.connect_seconds, remaining))
        expired = threading.Event()
        connected: list[socket.socket] = []  # the response may own the socket once conn lets it go

        def cut_off():
            expired.set()
            for sock in connected:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(remaining, cut_off)
        timer.daemon = True
        timer.start()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            headers = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.connect()
            # reads wait up to the deadline (a search may take the server a while); the timer
            # ends a drip, which a per-read timeout never would
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            connected.append(conn.sock)
            if expired.is_set():
                cut_off()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = bounded.read_stream(resp, url)
            if expired.is_set():
                raise OSError("cut off")
            return resp.status, resp.getheader("Location", ""), data
        except (OSError, http.client.HTTPException, InputError) as e:
            if expired.is_set():
                which = ("limits.http_request_seconds" if remaining == self.limits.request_seconds
                         else "limits.http_run_seconds")
                raise InboxError(f"{url}: no complete answer within {remaining:.0f} s ({which})") from None
            if isinstance(e, InputError):
                raise
            why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise InboxError(f"{url}: {why}") from None
        finally:
            timer.cancel()
            conn.close()
