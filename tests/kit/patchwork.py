"""A REAL patchwork server (v3.2.1, from the vendored source) on 127.0.0.1 with sqlite: its
tarball found (tarball), unpacked, migrated, a project with a maintainer and an API token made,
mails loaded with ``manage.py parsemail`` (Patchwork.parsemail), the server run with
``manage.py runserver`` (start_patchwork), and its REST API read back (Patchwork.api).

The server runs in .venv-patchwork (found by venv; scripts/patchwork-venv, `make tools`: Django 5.1,
djangorestframework 3.15, django-filter 24.3 from PyPI). Without the tarball or the virtualenv
the test fails and says how to get them: tests never skip for want of a tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.mail import free_port
from kit.series import PROXY_VARS

ROOT = Path(__file__).resolve().parents[2]
TARBALL_ENV = "POLICYBOT_PATCHWORK_TARBALL"
TARBALL = "patchwork-3.2.1.tar.gz"
VENV_ENV = "POLICYBOT_PATCHWORK_VENV"
PROJECT, LIST_ID, LIST_ADDR = "bpf", "bpf.vger.kernel.org", "bpf@vger.kernel.org"
BOT_USER = "policybot"  # the user whose token may post checks: a maintainer of PROJECT
HOW_TO_GET = (f"set {TARBALL_ENV} to patchwork v3.2.1's source (in a clone of github.com/getpatchwork/patchwork: "
              f"git archive --prefix=patchwork-3.2.1/ -o {TARBALL} v3.2.1)")

# run inside the server's Django (manage.py shell): the database, the defaults, a maintainer
# of the project with a token, a user who maintains nothing with another; prints both tokens
SETUP = f"""
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
call_command("loaddata", "default_tags", "default_states", verbosity=0)
from django.contrib.auth.models import User
from patchwork.models import Project
from rest_framework.authtoken.models import Token
project = Project.objects.create(linkname={PROJECT!r}, name="BPF", listid={LIST_ID!r}, listemail={LIST_ADDR!r})
bot = User.objects.create_user({BOT_USER!r}, "policybot@example.org", "unused")
bot.profile.maintainer_projects.add(project)
stranger = User.objects.create_user("stranger", "stranger@example.org", "unused")
print(Token.objects.create(user=bot).key, Token.objects.create(user=stranger).key)
"""

def venv() -> Path:
    """.venv-patchwork: $POLICYBOT_PATCHWORK_VENV, else the checkout's, else the one beside the
    .venv running the tests (scripts/mutate runs them in a copy of the tree)."""
    candidates = [os.environ.get(VENV_ENV, ""), str(ROOT / ".venv-patchwork"),
                  str(Path(sys.executable).parents[2] / ".venv-patchwork")]
    for c in candidates:
        if c and (Path(c) / "bin" / "python").exists():
            return Path(c)
    pytest.fail(f"no {ROOT / '.venv-patchwork'} (the patchwork server's virtualenv): run scripts/patchwork-venv "
                "(`make tools` does)", pytrace=False)


def tarball() -> Path:
    """The vendored source: $POLICYBOT_PATCHWORK_TARBALL when set, else ../shared/vendor beside
    the checkout, else /work/shared/vendor; none: the test fails saying how to make one."""
    if os.environ.get(TARBALL_ENV):
        candidates = [os.environ[TARBALL_ENV]]
    else:
        candidates = [str(ROOT.parent / "shared" / "vendor" / TARBALL), f"/work/shared/vendor/{TARBALL}"]
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    pytest.fail(f"no patchwork source ({', '.join(candidates)}): {HOW_TO_GET}", pytrace=False)


@dataclass
class Patchwork:
    url: str  # http://127.0.0.1:PORT
    token: str  # a maintainer's of the project: may post checks
    stranger_token: str  # a user's who maintains nothing: the server refuses its checks
    src: Path
    env: dict
    python: str  # .venv-patchwork's
    process: subprocess.Popen | None = None
    started_seconds: float = 0.0  # what the start cost, from unpacking to the first answer

    def manage(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run([self.python, "manage.py", *args], cwd=self.src, env=self.env,
                             input=stdin, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {out.stderr.strip()[-2000:]}")
        return out.stdout

    def parsemail(self, *paths: Path) -> None:
        """Each mail loaded as the list's mail server would (``parsemail``), in one process."""
        self.manage("shell", "-c", "from django.core.management import call_command\n"
                    f"for path in {[str(p) for p in paths]!r}:\n"
                    f"    call_command('parsemail', path, list_id={LIST_ID!r}, verbosity=0)\n")

    def api(self, path: str) -> object:
        """GET /api/1.3/PATH as anyone (the checks are public)."""
        with urllib.request.urlopen(f"{self.url}/api/1.3/{path.lstrip('/')}", timeout=30) as r:
            return json.load(r)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _needed(name: str) -> bool:
    parts = name.split("/")
    return len(parts) > 1 and (parts[1] in ("manage.py", "version.txt", "templates")
                               or parts[1] == "patchwork" and (len(parts) < 3 or parts[2] != "tests"))


def start_patchwork(tmp: Path) -> Patchwork:
    """Unpack, migrate, make the project and tokens, run the server; returns once it answers."""
    started = time.monotonic()
    python = str(venv() / "bin" / "python")
    with tarfile.open(tarball()) as tar:  # the server's code only: no docs, static files or its tests
        tar.extractall(tmp, members=[m for m in tar.getmembers() if _needed(m.name)], filter="data")
    (src,) = [p for p in tmp.iterdir() if (p / "manage.py").is_file()]
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and not k.startswith("PYTHON")}
    env.update(DJANGO_SETTINGS_MODULE="patchwork.settings.dev", DATABASE_TYPE="sqlite3",
               DATABASE_NAME=str(tmp / "patchwork.sqlite3"))
    port = free_port()
    pw = Patchwork(f"http://127.0.0.1:{port}", "", "", src, env, python)
    pw.token, pw.stranger_token = pw.manage("shell", "-c", SETUP).split()
    log = open(tmp / "runserver.log", "wb")
    pw.process = subprocess.Popen([python, "manage.py", "runserver", "--noreload",
                                   "--skip-checks", f"127.0.0.1:{port}"], cwd=src, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pw.process.poll() is not None:
            break
        try:
            pw.api("projects/")
            pw.started_seconds = time.monotonic() - started
            return pw
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    pw.stop()
    raise RuntimeError(f"patchwork's runserver did not answer: {(tmp / 'runserver.log').read_text()[-2000:]}")


def checks(pw: Patchwork, msgid: str) -> list[dict]:
    """Every check on the patch with ``msgid``, oldest first, as the API lists them."""
    (patch,) = pw.api(f"patches/?project={PROJECT}&msgid={urllib.request.quote(msgid.strip('<>'))}")
    return pw.api(f"patches/{patch['id']}/checks/?per_page=250")



# -- a series whose four patches get four different checks ------------------------------------------

# the states the four patches' checks must have, from what each patch does (rules.toml's verdicts
# for a stable kfunc): 1/4 adds a kfunc (no finding), 2/4 declares a kfunc that does not exist
# stable (DECLARATION_UNKNOWN_KFUNC: a warning), 3/4 removes the stable bpf_foo (KFUNC_REMOVED: a
# violation), 4/4 touches no kfunc
STATES = ["success", "warning", "fail", "success"]


def four_patch_series(tmp: Path, who: str) -> list[str]:
    """The mails (cover letter, then 1/4 .. 4/4) of a series made with git format-patch on
    kit.series' tree (``tmp``/linux); ``who``: the author's address, which makes the
    Message-IDs of each test's series its own."""
    from kit.series import BASE_KFUNCS, build_tree, clone, format_patch, git_env
    from kit.trees import FOO, MANIFEST, kernel, manifest
    if not (tmp / "linux").exists():
        build_tree(tmp / "linux")
    g = clone(tmp / "linux", tmp / f"work-{who}", git_env(name="Jane Developer", addr=who), "pw")
    g.commit({"kernel/bpf/helpers.c": kernel({**BASE_KFUNCS, "bpf_new": FOO})}, "bpf: add bpf_new")
    g.commit({MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable", bpf_ghost="stable")},
             "bpf: declare bpf_ghost stable")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO, "bpf_new": FOO})}, "bpf: drop bpf_foo")
    g.commit({"README": "Linux kernel\n\nRead the docs.\n"}, "README: point to the docs")
    return format_patch(g, tmp / f"mails-{who}")
