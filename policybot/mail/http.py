"""HTTP with deadlines, for every server the bot asks (public-inbox, patchwork).

Every request has a connect limit and a deadline from its first byte to its last, and all
requests of one client (one command, one weekly run) share a deadline too: a server that
drips a byte a second is cut off at the deadline, by a timer that shuts the socket, since a
per-read timeout never fires on a drip. Redirects are followed only within the configured
origin (scheme, host, port). The body is read within limits.max_input_bytes
(bounded.read_stream). A client raises its ``error`` class (an ``InputError``), which the
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


class HttpError(InputError):
    """The server did not give what was asked (no answer in time, a redirect elsewhere)."""


@dataclass(frozen=True)
class HttpLimits:
    connect_seconds: float = 10
    request_seconds: float = 60
    run_seconds: float = 300


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes
    url: str  # the URL that answered, after the redirects followed
    headers: dict[str, str]  # lower-cased names


def origin(url: urllib.parse.SplitResult) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, (url.hostname or "").lower(), port


class HttpClient:
    """Requests to one server (``url``'s origin) for one command or run."""

    error: type[InputError] = HttpError
    what = "a server"  # in the error for a URL that is not http(s)

    def __init__(self, url: str, limits: HttpLimits = HttpLimits(), user_agent: str = "policybot"):
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{url}: not an http(s) URL of {self.what}")
        self.origin = origin(parts)
        self.limits = limits
        self.user_agent = user_agent
        self.run_deadline = time.monotonic() + limits.run_seconds

    def headers(self) -> dict[str, str]:
        """The headers of every request (a subclass adds its authorization)."""
        return {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}

    def follow(self, method: str, url: str, body: bytes | None = None,
               content_type: str = "application/x-www-form-urlencoded") -> Answer:
        """``method url`` and the redirects within the origin; any status comes back."""
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, data = self._request(method, url, body, content_type)
            location = headers.get("location", "")
            if status not in REDIRECTS or not location:
                return Answer(status, data, url, headers)
            target = urllib.parse.urljoin(url, location)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme not in ("http", "https") or origin(parts) != self.origin:
                raise self.error(f"{url}: redirected to {parts.scheme}://{parts.netloc}, outside "
                                 f"{self.origin[0]}://{self.origin[1]}:{self.origin[2]}: not followed")
            if status == 303:
                method, body = "GET", None
            url = target
        raise self.error(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _request(self, method: str, url: str, body: bytes | None,
                 content_type: str) -> tuple[int, dict[str, str], bytes]:
        now = time.monotonic()
        remaining = min(self.limits.request_seconds, self.run_deadline - now)
        deadline = now + remaining
        if remaining <= 0:
            raise self.error(f"{url}: not asked: this run's requests took limits.http_run_seconds "
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
            headers = self.headers()
            if body is not None:
                headers["Content-Type"] = content_type
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
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        except (OSError, http.client.HTTPException, InputError) as e:
            if expired.is_set():
                which = ("limits.http_request_seconds" if remaining == self.limits.request_seconds
                         else "limits.http_run_seconds")
                raise self.error(f"{url}: no complete answer within {remaining:.0f} s ({which})") from None
            if isinstance(e, InputError):
                raise
            why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise self.error(f"{url}: {why}") from None
        finally:
            timer.cancel()
            conn.close()
