"""The operator's configuration (config/policybot.toml): trees, inbox, mail, state, schedule.

Found at ``--config``, ``$POLICYBOT_CONFIG``, or not at all (built-in
defaults, which run nothing on a schedule). Every error names key and line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import bounded
from ..errors import ConfigError
from ..model.vocabulary import VERDICTS
from ..mail.http import HttpLimits
from ..mail.inbox import Inbox
from ..mail.patchwork import Patchwork
from ..mail.message import MailConfig
from ..policy.config import Policy, line_of, load_policy, read_toml, table_lines

_TIME = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun|daily)\s+(\d{1,2}):(\d{2})$")


@dataclass
class Tree:
    name: str
    repo: str
    remote: str = ""  # URL or path fetched before each audit; "" = audit the repository as it is
    branch: str = "master"
    policy: Policy = field(default_factory=Policy)
    report_to: list[str] = field(default_factory=list)
    report_html: str = ""  # write the stability page here after each weekly run
    quiet_weeks: bool = False  # send a "nothing changed" report too


@dataclass
class Schedule:
    weekly_day: str = "mon"
    weekly_hour: int = 6
    weekly_minute: int = 0
    inbox_minutes: int = 60  # 0 = no inbox job
    lock_wait_seconds: int = 600  # a scheduled job waits this long for a run that holds the lock


@dataclass
class Limits:
    """Bounds on what a sender can make the bot do (docs/operators.md: Limits and etiquette)."""
    max_recipients: int = 50  # To + Cc of one reply; maintainers and lists come first
    max_thread_cc: int = 5  # addresses of the patch's own To/Cc copied on a reply (the sender chose them)
    max_replies_per_series: int = 8  # replies drafted for one series in one review; the rest are noted
    max_replies_per_sender_per_day: int = 16  # reviews to one patch author a day (UTC), over all series
    max_quote_lines: int = 40  # quoted lines per finding in a reply (each cut at 200 characters)
    max_message_bytes: int = 20 * 1024 * 1024  # a larger inbox message is not read
    max_patch_bytes: int = 10 * 1024 * 1024  # a larger patch is not reviewed
    # every byte from outside (policybot/bounded.py): one file, stream or HTTP body, and
    # what one compressed stream may become
    max_input_bytes: int = bounded.Limits.max_input_bytes
    max_decompressed_bytes: int = bounded.Limits.max_decompressed_bytes
    max_declaration_bytes: int = bounded.Limits.max_declaration_bytes  # YAML: parsing is slow and large
    # the public-inbox server: connecting, one request from start to last byte, all
    # requests of one command or run together
    http_connect_seconds: int = 10
    http_request_seconds: int = 60
    http_run_seconds: int = 300

    def reading(self) -> bounded.Limits:
        return bounded.Limits(self.max_input_bytes, self.max_decompressed_bytes, self.max_declaration_bytes)

    def inbox(self, url: str) -> Inbox:
        """The public-inbox at ``url``, its requests bounded by these limits (one per command or run)."""
        from .. import __version__
        return Inbox(url, HttpLimits(self.http_connect_seconds, self.http_request_seconds, self.http_run_seconds),
                     f"policybot/{__version__}")


@dataclass
class PatchworkSettings:
    """Where the review's checks go ([patchwork]); no url: none are posted."""
    url: str = ""  # the server, e.g. https://patchwork.kernel.org
    project: str = ""  # the project's link name there, e.g. netdevbpf
    token_file: str = ""  # a file (mode 0600) holding the API token of one of its maintainers
    context: str = "policybot"  # the slug of our checks on the list


_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,255}$")  # a check's context (patchwork's SlugField)


@dataclass
class Config:
    path: str = "<defaults>"
    state_dir: str = ""
    db_url: str = ""
    mail: MailConfig = field(default_factory=MailConfig)
    templates: str = ""
    review_min_verdict: str = "notice"
    inbox_maildir: str = ""
    inbox_url: str = "https://lore.kernel.org/all"
    inbox_query: str = ""  # a public-inbox search whose threads the inbox job reviews
    census_sources: list[str] = field(default_factory=list)  # read by `policybot census` each weekly run
    schedule: Schedule = field(default_factory=Schedule)
    trees: list[Tree] = field(default_factory=list)
    expiring_horizon_days: int | None = None  # overrides the trees' policies when set
    limits: Limits = field(default_factory=Limits)
    patchwork: PatchworkSettings = field(default_factory=PatchworkSettings)

    def patchwork_client(self, with_token: bool = True) -> Patchwork | None:
        """The [patchwork] server under these limits, its token read (None: not configured).
        ``with_token=False``: for reading a series, which needs none."""
        from .. import __version__
        from ..mail.patchwork import read_token
        pw, lim = self.patchwork, self.limits
        if not pw.url:
            return None
        token = read_token(pw.token_file) if with_token and pw.token_file else ""
        return Patchwork(pw.url, pw.project, token,
                         HttpLimits(lim.http_connect_seconds, lim.http_request_seconds, lim.http_run_seconds),
                         f"policybot/{__version__}")

    def tree(self, name: str) -> Tree:
        for t in self.trees:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.trees) or "none configured"
        raise ConfigError(f"{self.path}: no tree named {name!r} (trees: {known})")


def config_path(explicit: str | None) -> str | None:
    return explicit or os.environ.get("POLICYBOT_CONFIG") or None


def load_config(path: str | os.PathLike | None) -> Config:
    if path is None:
        return Config()
    data, text = read_toml(path)
    return _from_dict(data, Path(path), text)


def _check_keys(section: dict, known: set, path, text, table) -> None:
    for key in section:
        if key not in known:
            where = f"{path}:{line_of(text, key, table)}"
            raise ConfigError(f"{where}: {table + '.' if table else ''}{key}: unknown key "
                              f"(known: {', '.join(sorted(known))})")


def _typed(value, kind, where: str):
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: must be a whole number")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string")
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ConfigError(f"{where}: must be a list of strings")
    return value


@dataclass(frozen=True)
class _Source:
    """The file being read: for error locations and for paths relative to it."""
    path: Path
    text: str

    def where(self, key: str, table: str) -> str:
        return f"{self.path}:{line_of(self.text, key, table)}: {table}.{key}"

    def rel(self, p: str) -> str:
        p = os.path.expanduser(p)
        return p if os.path.isabs(p) or "://" in p else str(self.path.parent / p)


def _from_dict(data: dict, path: Path, text: str) -> Config:
    cfg = Config(path=str(path))
    _check_keys(data, {"state", "mail", "inbox", "schedule", "trees", "audit", "limits", "census",
                       "patchwork"}, path, text, "")
    src = _Source(path, text)
    for read in (_read_state, _read_mail, _read_inbox, _read_census, _read_schedule, _read_audit, _read_limits,
                 _read_patchwork, _read_trees):
        read(cfg, data, src)
    return cfg


def _read_state(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where, rel = src.path, src.text, src.where, src.rel
    st = data.get("state", {})
    _check_keys(st, {"dir", "url"}, path, text, "state")
    if "dir" in st:
        cfg.state_dir = rel(_typed(st["dir"], str, where("dir", "state")))
    if "url" in st:
        cfg.db_url = _typed(st["url"], str, where("url", "state"))


def _read_mail(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where, rel = src.path, src.text, src.where, src.rel
    m = data.get("mail", {})
    mail_keys = {"from": ("from_addr", str), "operator": ("operator_contact", str), "list": ("list_addr", str),
                 "send": ("send", bool), "smtp_host": ("smtp_host", str), "smtp_port": ("smtp_port", int),
                 "smtp_security": ("smtp_security", str), "smtp_auth_file": ("smtp_auth_file", str),
                 "msgid_domain": ("msgid_domain", str)}
    _check_keys(m, set(mail_keys) | {"templates", "review_min_verdict"}, path, text, "mail")
    kwargs = {}
    for key, (attr, kind) in mail_keys.items():
        if key in m:
            kwargs[attr] = _typed(m[key], kind, where(key, "mail"))
    if kwargs.get("smtp_security", "starttls") not in ("starttls", "tls", "none"):
        raise ConfigError(f"{where('smtp_security', 'mail')}: must be \"starttls\", \"tls\" or \"none\"")
    try:
        cfg.mail = MailConfig(**kwargs)
    except (ValueError, ConfigError) as e:
        raise ConfigError(f"{path}:{line_of(text, 'from', 'mail')}: mail: {e}") from None
    if "templates" in m:
        cfg.templates = rel(_typed(m["templates"], str, where("templates", "mail")))
    if "review_min_verdict" in m:
        v = _typed(m["review_min_verdict"], str, where("review_min_verdict", "mail"))
        if v not in VERDICTS:
            raise ConfigError(f"{where('review_min_verdict', 'mail')}: one of info, notice, warning, violation")
        cfg.review_min_verdict = v


def _read_inbox(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where, rel = src.path, src.text, src.where, src.rel
    inbox = data.get("inbox", {})
    _check_keys(inbox, {"maildir", "url", "query"}, path, text, "inbox")
    if "query" in inbox:
        cfg.inbox_query = _typed(inbox["query"], str, where("query", "inbox"))
    if "maildir" in inbox:
        cfg.inbox_maildir = rel(_typed(inbox["maildir"], str, where("maildir", "inbox")))
    if "url" in inbox:
        cfg.inbox_url = _typed(inbox["url"], str, where("url", "inbox"))


def _read_census(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where, rel = src.path, src.text, src.where, src.rel
    census = data.get("census", {})
    if not isinstance(census, dict):
        raise ConfigError(f"{path}:{line_of(text, 'census')}: 'census' must be a table")
    _check_keys(census, {"sources"}, path, text, "census")
    if "sources" in census:
        # a path is relative to the config; REPO@REV[:PATH] keeps its revision part
        cfg.census_sources = [rel(s.split("@", 1)[0]) + ("@" + s.split("@", 1)[1] if "@" in s else "")
                              for s in _typed(census["sources"], list, where("sources", "census"))]


def _read_schedule(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where = src.path, src.text, src.where
    sch = data.get("schedule", {})
    _check_keys(sch, {"weekly", "inbox_minutes", "lock_wait_seconds"}, path, text, "schedule")
    if "weekly" in sch:
        w = _TIME.match(_typed(sch["weekly"], str, where("weekly", "schedule")).strip().lower())
        if not w or int(w.group(2)) > 23 or int(w.group(3)) > 59:
            raise ConfigError(f"{where('weekly', 'schedule')}: expected \"mon 06:00\" (a day or daily, "
                              "and a UTC time)")
        cfg.schedule.weekly_day, cfg.schedule.weekly_hour, cfg.schedule.weekly_minute = \
            w.group(1), int(w.group(2)), int(w.group(3))
    if "inbox_minutes" in sch:
        cfg.schedule.inbox_minutes = _typed(sch["inbox_minutes"], int, where("inbox_minutes", "schedule"))
    if "lock_wait_seconds" in sch:
        wait = _typed(sch["lock_wait_seconds"], int, where("lock_wait_seconds", "schedule"))
        if not 0 <= wait <= 86400:
            raise ConfigError(f"{where('lock_wait_seconds', 'schedule')}: must be 0 to 86400 (a day)")
        cfg.schedule.lock_wait_seconds = wait


def _read_audit(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where = src.path, src.text, src.where
    audit = data.get("audit", {})
    _check_keys(audit, {"expiring_horizon_days"}, path, text, "audit")
    if "expiring_horizon_days" in audit:
        cfg.expiring_horizon_days = _typed(audit["expiring_horizon_days"], int,
                                           where("expiring_horizon_days", "audit"))


def _read_limits(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where = src.path, src.text, src.where
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError(f"{path}:{line_of(text, 'limits')}: 'limits' must be a table")
    _check_keys(limits, {f.name for f in dataclasses.fields(Limits)}, path, text, "limits")
    for key, value in limits.items():
        n = _typed(value, int, where(key, "limits"))
        if n < 1:
            raise ConfigError(f"{where(key, 'limits')}: must be at least 1")
        setattr(cfg.limits, key, n)


def _read_patchwork(cfg: Config, data: dict, src: _Source) -> None:
    path, text, where, rel = src.path, src.text, src.where, src.rel
    pw = data.get("patchwork", {})
    if not isinstance(pw, dict):
        raise ConfigError(f"{path}:{line_of(text, 'patchwork')}: 'patchwork' must be a table")
    _check_keys(pw, {f.name for f in dataclasses.fields(PatchworkSettings)}, path, text, "patchwork")
    for key in pw:
        setattr(cfg.patchwork, key, _typed(pw[key], str, where(key, "patchwork")))
    if not pw:
        return
    for key in ("url", "project", "token_file"):
        if not getattr(cfg.patchwork, key):
            raise ConfigError(f"{path}:{line_of(text, 'patchwork')}: patchwork.{key}: missing (the checks need "
                              "url, project and token_file)")
    if not re.match(r"^https?://[^/]", cfg.patchwork.url):
        raise ConfigError(f"{where('url', 'patchwork')}: not an http(s) URL")
    if not _SLUG.match(cfg.patchwork.context):
        raise ConfigError(f"{where('context', 'patchwork')}: letters, digits, - and _ only (a slug)")
    cfg.patchwork.token_file = rel(cfg.patchwork.token_file)


def _read_trees(cfg: Config, data: dict, src: _Source) -> None:
    path, text, rel = src.path, src.text, src.rel
    trees = data.get("trees", [])
    if not isinstance(trees, list):
        raise ConfigError(f"{path}:{line_of(text, 'trees')}: 'trees' must be an array of tables ([[trees]])")
    tree_keys = {"name", "repo", "remote", "branch", "policy", "report_to", "report_html", "quiet_weeks"}
    names = set()
    lines = table_lines(text, "trees")
    policies: dict[str, Policy] = {}  # trees sharing a policy file share its one reading
    for i, t in enumerate(trees):
        line = lines[i] if i < len(lines) else 1
        w = f"{path}:{line}: trees[{i}]"
        for key in t:
            if key not in tree_keys:
                raise ConfigError(f"{w}.{key}: unknown key (known: {', '.join(sorted(tree_keys))})")
        for req in ("name", "repo"):
            if req not in t:
                raise ConfigError(f"{w}: missing {req}")
        tree = Tree(name=_typed(t["name"], str, f"{w}.name"), repo=rel(_typed(t["repo"], str, f"{w}.repo")))
        if tree.name in names:
            raise ConfigError(f"{w}.name: duplicate tree name {tree.name!r}")
        names.add(tree.name)
        if "remote" in t:
            tree.remote = _typed(t["remote"], str, f"{w}.remote")
        if "branch" in t:
            tree.branch = _typed(t["branch"], str, f"{w}.branch")
        if "policy" in t:
            policy_path = rel(_typed(t["policy"], str, f"{w}.policy"))
            if policy_path not in policies:
                policies[policy_path] = load_policy(policy_path)
            tree.policy = policies[policy_path]
        if "report_to" in t:
            tree.report_to = _typed(t["report_to"], list, f"{w}.report_to")
        if "report_html" in t:
            tree.report_html = rel(_typed(t["report_html"], str, f"{w}.report_html"))
        if "quiet_weeks" in t:
            tree.quiet_weeks = _typed(t["quiet_weeks"], bool, f"{w}.quiet_weeks")
        cfg.trees.append(tree)
