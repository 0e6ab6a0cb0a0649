"""``policybot doctor``: is this deployment ready to run? A list of independent checks, each
of one thing the weekly run needs (the configuration, each tree, SMTP, patchwork, the state
database, the templates); each reads and connects but changes nothing and sends nothing. One
that fails never stops the others: every problem is found in one pass, one line each,
naming what to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import PolicybotError, describe
from ..model.doctor import CheckResult, CheckStatus
from . import settings

if TYPE_CHECKING:
    from .config import Config, Tree

OK, PROBLEM, SKIPPED = CheckStatus.OK, CheckStatus.PROBLEM, CheckStatus.SKIPPED


def check_config(cfg: Config) -> list[CheckResult]:
    """It loaded (every key known, every value typed: load_config refuses the rest); what a
    run needs of it beyond that."""
    if not cfg.trees:
        return [CheckResult("config", PROBLEM, f"{cfg.path}: no [[trees]]: the weekly run has nothing to audit "
                                               f"(add a [[trees]] table with name, repo, remote, branch)")]
    return [CheckResult("config", OK, f"{cfg.path}: loads; trees: {', '.join(t.name for t in cfg.trees)}")]


def check_tree(tree: Tree) -> CheckResult:
    """The mirror opens; its branch resolves: on the remote as it is now (nothing fetched), or
    in the repository itself for a tree without a remote."""
    from ..kernel.gitrepo import missing_branch, open_repo, remote_branches, resolve
    what = f"tree {tree.name}"
    try:
        repo = open_repo(tree.repo)
    except PolicybotError as e:
        return CheckResult(what, PROBLEM, f"{e} (fix [[trees]] repo, or create the mirror: "
                                          f"git init --bare {tree.repo})")
    if not tree.remote:
        try:
            head = resolve(repo, tree.branch)
        except PolicybotError as e:
            return CheckResult(what, PROBLEM, f"{e} (fix [[trees]] branch)")
        return CheckResult(what, OK, f"{tree.repo}: {tree.branch} at {str(head.id)[:12]}")
    try:
        branches = remote_branches(repo, tree.remote)
    except PolicybotError as e:
        return CheckResult(what, PROBLEM, f"{e} (fix [[trees]] remote, or the network)")
    if missing := missing_branch(tree.remote, tree.branch, branches):
        return CheckResult(what, PROBLEM, missing)
    return CheckResult(what, OK, f"{tree.remote}: {tree.branch} at {branches[tree.branch][:12]}")


def check_trees(cfg: Config, overrides: settings.Overrides) -> list[CheckResult]:
    return [check_tree(tree) for tree in cfg.trees]


def check_smtp(cfg: Config, overrides: settings.Overrides) -> list[CheckResult]:
    from ..mail.outbox import probe_smtp
    try:
        return [CheckResult("smtp", OK, probe_smtp(cfg.mail))]
    except PolicybotError as e:
        return [CheckResult("smtp", PROBLEM, f"{e} (fix [mail] smtp_host, smtp_port, smtp_security, "
                                             f"smtp_auth_file, or the server)")]


def check_patchwork(cfg: Config, overrides: settings.Overrides) -> list[CheckResult]:
    """With a [patchwork] section: the token file reads, the server accepts the token and has
    the project (Patchwork.verify: nothing is posted). Without one: nothing to check."""
    if not cfg.patchwork.url:
        return []
    try:
        client = cfg.patchwork_client()
        return [CheckResult("patchwork", OK, client.verify())]
    except PolicybotError as e:
        return [CheckResult("patchwork", PROBLEM, f"{e} (fix [patchwork] url, project or token_file)")]


def check_state(cfg: Config, overrides: settings.Overrides) -> list[CheckResult]:
    """The state database opens read-only and holds a schema this policybot knows."""
    import os

    from ..schema import SCHEMA_VERSION
    from ..state import inspect
    state_dir = settings.state_dir(overrides, cfg)
    if state_dir.exists() and not os.access(state_dir, os.W_OK | os.X_OK):
        return [CheckResult("state", PROBLEM, f"{state_dir}: the state directory is not writable by this user "
                                              f"(run as the service's user, or fix its owner)")]
    try:
        where, version = inspect(settings.db_url(overrides, cfg), state_dir)
    except PolicybotError as e:
        return [CheckResult("state", PROBLEM, f"{e} (restore it from a backup, or move it away: the next run "
                                              f"starts a new one)")]
    if version is None:
        return [CheckResult("state", OK, f"{where}: not created yet (the first run creates it)")]
    if version > SCHEMA_VERSION:
        return [CheckResult("state", PROBLEM, f"{where}: schema {version}, this policybot knows up to "
                                              f"{SCHEMA_VERSION} (upgrade policybot)")]
    later = "" if version == SCHEMA_VERSION else f", migrated to {SCHEMA_VERSION} by the next run"
    return [CheckResult("state", OK, f"{where}: schema {version}{later}")]


def check_templates(cfg: Config, overrides: settings.Overrides) -> list[CheckResult]:
    """Every template compiles: the mail's (an operator's [mail] templates first) and the page's."""
    import os

    from ..mail.drafts import template_env
    from ..render.page import page_environment
    from ..templating import broken
    if cfg.templates and not os.path.isdir(cfg.templates):
        return [CheckResult("templates", PROBLEM, f"{cfg.templates}: no such directory (fix [mail] templates)")]
    mail, page = template_env(cfg.templates or None), page_environment()
    mail_names = [n for n in mail.list_templates() if n.endswith(".txt.j2")]
    page_names = [n for n in page.list_templates() if n.endswith(".html.j2")]
    problems = broken(mail, mail_names) + broken(page, page_names)
    if problems:
        return [CheckResult("templates", PROBLEM, f"{p} (fix the template)") for p in problems]
    return [CheckResult("templates", OK, f"{len(mail_names) + len(page_names)} templates compile")]


# each check: (config, overrides) -> its results; independent of the others
CHECKS: tuple[tuple[str, Callable[[Config, settings.Overrides], list[CheckResult]]], ...] = (
    ("trees", check_trees), ("smtp", check_smtp), ("patchwork", check_patchwork),
    ("state", check_state), ("templates", check_templates))


def doctor(overrides: settings.Overrides) -> list[CheckResult]:
    """Every check's results: the configuration first; when it does not load, that one line
    and the rest skipped (they all read it)."""
    try:
        cfg = settings.load(overrides)
    except PolicybotError as e:
        return [CheckResult("config", PROBLEM, str(e)),
                *(CheckResult(name, SKIPPED, "the configuration does not load") for name, _ in CHECKS)]
    out = check_config(cfg)
    for name, check in CHECKS:
        try:
            out += check(cfg, overrides)
        except Exception as e:  # noqa: BLE001 - one check that breaks never hides the others' findings
            out.append(CheckResult(name, PROBLEM, f"could not check: {describe(e)}"))
    return out
