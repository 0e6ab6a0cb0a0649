"""A patchwork server's REST API (``/api/1.3/``), over mail/http.py's bounded requests.

What the bot asks of it: a patch by Message-ID (``GET patches/?project=P&msgid=M``), the
newest check of one context on a patch (``GET patches/ID/checks/?context=C&order=-date``),
a new check (``POST patches/ID/checks/``, which only the project's maintainers, the
submitter or the delegate may do), a series and its mbox (``GET series/ID/``, then the
``mbox`` URL it gives). Writes carry ``Authorization: Token ...``; the token is read from
a file only its owner may read (bounded.read_secret).

Anything but a 2xx is a ``PatchworkError`` naming the URL and the status (a refused
token, a missing project, a server down): the caller records it, it never crashes a run.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

from .. import bounded
from .http import HttpClient, HttpError, HttpLimits, origin

API = "/api/1.3"
STATES = ("pending", "success", "warning", "fail")  # a check's states, as patchwork names them


class PatchworkError(HttpError):
    """The patchwork server did not do what was asked."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status, None when no answer came

    @property
    def refused(self) -> bool:
        """The token was refused (HTTP 401 or 403)."""
        return self.status in (401, 403)


@dataclass(frozen=True)
class CheckPost:
    """One check to post on one patch."""
    state: str  # one of STATES
    context: str  # the slug the list shows beside the state
    description: str  # one line
    target_url: str = ""  # "" when there is nothing to point at


def read_token(path: str) -> str:
    """The API token in ``path`` (its first line), a file only its owner may read."""
    lines = bounded.read_secret(path, "patchwork token")
    if not lines or not lines[0].strip():
        from ..errors import ConfigError
        raise ConfigError(f"{path}: expected the patchwork API token on line 1")
    return lines[0].strip()


class Patchwork(HttpClient):
    """One patchwork project (``url``, ``project``'s link name) for one command or run."""

    error = PatchworkError
    what = "a patchwork server"

    def __init__(self, url: str, project: str, token: str = "", limits: HttpLimits = HttpLimits(),
                 user_agent: str = "policybot"):
        super().__init__(url, limits, user_agent)
        self.project = project
        self.token = token

    def headers(self) -> dict[str, str]:
        out = super().headers() | {"Accept": "application/json"}
        if self.token:
            out["Authorization"] = f"Token {self.token}"
        return out

    def api(self, path: str, **query: str) -> str:
        """The URL of ``path`` under the API, with ``query``."""
        q = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.url}{API}/{path.lstrip('/')}{q}"

    def request_json(self, url: str, method: str = "GET", payload: dict | None = None):
        """The JSON a 2xx answer to ``method url`` carries; anything else is an error."""
        body = json.dumps(payload).encode() if payload is not None else None
        answer = self.follow(method, url, body, "application/json")
        if not 200 <= answer.status < 300:
            raise PatchworkError(f"{answer.url}: HTTP {answer.status}{_why(answer.status, answer.data)}",
                                 answer.status)
        try:
            return json.loads(answer.data)
        except (ValueError, UnicodeDecodeError):
            raise PatchworkError(f"{answer.url}: HTTP {answer.status} but not JSON", answer.status) from None

    def patch_by_msgid(self, msgid: str) -> int | None:
        """The id of the project's patch with Message-ID ``msgid`` (without <>), None when it has none."""
        url = self.api("patches/", project=self.project, msgid=msgid.strip("<>"))
        found = self.request_json(url)
        if not isinstance(found, list):
            raise PatchworkError(f"{url}: not a list of patches")
        if not found:
            return None
        pid = found[0].get("id") if isinstance(found[0], dict) else None
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise PatchworkError(f"{url}: a patch without an id")
        return pid

    def newest_check(self, patch_id: int, context: str) -> dict | None:
        """The newest check of ``context`` on the patch (the one the list shows), None for none."""
        found = self.request_json(self.api(f"patches/{int(patch_id)}/checks/", context=context,
                                           order="-date,-id", per_page="1"))
        return found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None

    def post_check(self, patch_id: int, check: CheckPost) -> dict:
        payload = {"state": check.state, "context": check.context, "description": check.description}
        if check.target_url:
            payload["target_url"] = check.target_url
        return self.request_json(self.api(f"patches/{int(patch_id)}/checks/"), "POST", payload)

    def sync_check(self, patch_id: int, check: CheckPost) -> bool:
        """Post ``check`` unless it would change nothing, as Kernel Patches Daemon does: the
        newest check of the context has the same state and URL, or it is conclusive and
        ``check`` is pending. True when a check was posted."""
        newest = self.newest_check(patch_id, check.context)
        if newest is not None:
            if check.state == "pending" and newest.get("state") != "pending":
                return False
            if newest.get("state") == check.state and (newest.get("target_url") or "") == check.target_url:
                return False
        self.post_check(patch_id, check)
        return True

    def series(self, series_id: int) -> dict:
        return self.request_json(self.api(f"series/{int(series_id)}/"))

    def series_mbox(self, series_id: int) -> bytes:
        """The mbox of a series: its cover letter (the series' ``cover_letter`` has its own
        ``mbox`` URL; the series' ``mbox`` lacks it, and with it the base-commit line), then
        its patches, as the server's ``mbox`` URLs give them."""
        where = self.api(f"series/{int(series_id)}/")
        series = self.series(series_id)
        url = series.get("mbox")
        if not isinstance(url, str) or not url:
            raise PatchworkError(f"{where}: no mbox URL in the answer")
        cover = series.get("cover_letter")
        cover_url = cover.get("mbox") if isinstance(cover, dict) else None
        if cover is not None and (not isinstance(cover_url, str) or not cover_url):
            raise PatchworkError(f"{where}: a cover letter without an mbox URL")
        patches = self.get_mbox(url)
        if not cover_url:
            return patches
        letter = self.get_mbox(cover_url)
        return letter + (b"" if letter.endswith(b"\n") else b"\n") + b"\n" + patches

    def get_mbox(self, url: str) -> bytes:
        """What ``url`` (an mbox URL an answer gave: on this server only) answers with a 2xx."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or origin(parts) != self.origin:
            raise PatchworkError(f"{url}: outside {self.url}: not read")
        answer = self.follow("GET", url)
        if not 200 <= answer.status < 300:
            raise PatchworkError(f"{answer.url}: HTTP {answer.status}{_why(answer.status, answer.data)}",
                                 answer.status)
        return answer.data

    def verify(self) -> str:
        """Whether the token is accepted, the project exists and the token's user maintains it
        (patchwork takes checks from a project's maintainers, besides a patch's submitter and
        delegate), for `policybot doctor`: a line saying so, or a PatchworkError. Posts nothing."""
        if not self.token:
            raise PatchworkError(f"{self.url}: no token (patchwork.token_file)")
        self.request_json(self.api("users/", per_page="1"))  # only an accepted token may list users
        project = self.request_json(self.api(f"projects/{urllib.parse.quote(self.project, safe='')}/"))
        name = project.get("link_name", self.project) if isinstance(project, dict) else self.project
        maintainers = project.get("maintainers") if isinstance(project, dict) else None
        for m in (maintainers if isinstance(maintainers, list) else [])[:MAX_MAINTAINERS_ASKED]:
            # the API shows a user's settings to that user alone: the maintainer whose settings show is the token's
            if isinstance(m, dict) and isinstance(m.get("id"), int) and \
                    "settings" in (self.request_json(self.api(f"users/{m['id']}/")) or {}):
                return f"{self.url}: token accepted, project {name!r}, which its user {m.get('username')!r} maintains"
        raise PatchworkError(f"{self.url}: the token's user maintains no part of project {name!r}: the server "
                             "would refuse its checks (patchwork.token_file: a token of one of the project's "
                             "maintainers)", 403)


MAX_MAINTAINERS_ASKED = 100  # one request each: a bound for a project listing thousands


def _why(status: int, data: bytes) -> str:
    """What the server said of a refusal, in one short line (DRF's ``detail``)."""
    detail = ""
    try:
        answer = json.loads(data[:4096])
        if isinstance(answer, dict):
            detail = str(answer.get("detail") or "")
    except (ValueError, UnicodeDecodeError):
        pass
    detail = " ".join(detail.split())[:200]
    hint = (": refused (patchwork.token_file: a token of one of the project's maintainers may post checks)"
            if status in (401, 403) else "")
    return (f" ({detail})" if detail else "") + hint
