"""The whole output of every policybot command on the bundled sample tree, byte for byte.

Guards the command line and its renderers: each test runs one command (or a
few, in order) in-process through ``policybot.cli.main`` on the tree that
samples/make_sample.py builds (tags v6.1 and v6.2, fixed dates, so fixed
commit ids), and compares its exit status, standard output and standard
error with tests/snapshots/commands/NAME.txt. BPF objects for `check` and a
stand-in compiled kernel for `inventory --btf` and `check --btf` are built
from tests/bpf/ with clang-19 (whose BTF the snapshots record).

Every command that takes --today gets one. Paths of the test's scratch
directories are written as <tmp>, policybot's version as <version>, and the
scheduler's next run times (taken from the clock) as <next run>; nothing else
is rewritten.

A person reads a snapshot once; from then on any change of a byte fails here
with a unified diff. After a reviewed change of the output, regenerate with

    POLICYBOT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/test_command_output.py

and review `git diff tests/snapshots/commands/` before committing.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import importlib.util
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

import policybot
from policybot import __version__
from policybot.cli import main
from kit import sarif, snapshots
from kit.bpf import SOURCES as BPF_SOURCES, clang, compile_bpf

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots" / "commands"

# the dates the sample's story happens on (samples/demo uses the same)
TODAY = "2023-03-01"  # a week after v6.2
WEEK1, WEEK8 = "2023-01-02", "2023-02-20"  # the weekly runs: v6.1 is the baseline, then v6.2 lands
REVIEW_DAY = "2024-01-01"
POLICY = "config/policy.toml"  # relative to ROOT, the tests' working directory: printed as given


def _load_make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "samples" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Sample:
    root: Path  # the module's scratch directory: written as <tmp>
    repo: str  # the sample tree, <tmp>/sample-linux
    user: str  # tests/bpf/sample_user.bpf.o, compiled for the sample's kfuncs
    needs_gone: str  # tests/bpf/needs_gone.bpf.o: a strong extern no release has
    vmlinux: str  # tests/bpf/sample_vmlinux.c compiled, its .BTF: a kernel's BTF with v6.1's kfuncs tagged


def refs(path: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(path))
    return {name: str(repo.references[name].peel(pygit2.Commit).id) for name in repo.references}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Sample:
    # the snapshots are of this checkout's policybot, not of another install's
    assert Path(policybot.__file__).resolve().parent == ROOT / "policybot", policybot.__file__
    # their BTF ids, type counts and prototypes are clang-19's (scripts/test-tools installs it)
    assert Path(clang()).name == "clang-19", f"{clang()}: the snapshots were made with clang-19"
    root = tmp_path_factory.mktemp("sample")
    make_sample = _load_make_sample()
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs before conftest's isolation
        mp.setenv("HOME", str(root))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        make_sample.build(root / "sample-linux")
        make_sample.build(root / "again")
        # the commit ids in the snapshots: the same for every build of the sample
        assert refs(root / "sample-linux") == refs(root / "again")
        shutil.rmtree(root / "again")
        v62 = refs(root / "sample-linux")["refs/tags/v6.2"]
        assert f"base-commit: {v62}\n" in (ROOT / "samples" / "series.mbox").read_text()
        # sources copied into the scratch directory: the objects' line info then names <tmp> paths
        src = root / "bpf"
        src.mkdir()
        objs = {}
        for name in ("sample_user.bpf.c", "needs_gone.bpf.c", "sample_vmlinux.c"):
            shutil.copy(BPF_SOURCES / name, src / name)
            objs[name] = str(compile_bpf(src / name, src / (name.removesuffix(".c") + ".o")))
        # a compiled kernel's BTF is no BPF object (check refuses one): its .BTF alone, raw, as
        # /sys/kernel/btf/vmlinux is
        objcopy = shutil.which("llvm-objcopy") or pytest.fail("no llvm-objcopy (Debian: llvm)")
        raw = src / "sample_vmlinux"
        subprocess.run([objcopy, f"--dump-section=.BTF={raw}", objs["sample_vmlinux.c"], str(src / "scratch.o")],
                       check=True)
    return Sample(root, str(root / "sample-linux"), objs["sample_user.bpf.c"], objs["needs_gone.bpf.c"], str(raw))


@pytest.fixture(autouse=True)
def _in_the_checkout(monkeypatch):
    # relative paths (--policy config/policy.toml, SARIF's artifact URIs) are taken from here
    monkeypatch.chdir(ROOT)


# -- running a command and comparing its output ---------------------------------------------------

class Runner:
    """Runs policybot commands and writes each as a block of the snapshot text."""

    def __init__(self, capsys, *scratch: Path):
        self.capsys = capsys
        self.scratch = sorted((str(p) for p in scratch), key=len, reverse=True)
        self.blocks: list[str] = []
        self.out = ""  # the last command's stdout, as it wrote it

    def __call__(self, *argv: str) -> int:
        self.capsys.readouterr()
        status = main(list(argv))
        cap = self.capsys.readouterr()
        self.out = cap.out
        self.blocks.append(f"$ policybot {shlex.join(argv)}\nexit status: {status}\n"
                           f"--- stdout ---\n{_stream(cap.out)}--- stderr ---\n{_stream(cap.err)}")
        return status

    def text(self) -> str:
        return self.normalise("\n".join(self.blocks))

    def normalise(self, text: str) -> str:
        for path in self.scratch:
            text = text.replace(path, "<tmp>")
        return text


def _stream(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n\\ no newline at end\n"


def version(text: str) -> str:
    """policybot's version (SARIF's tool.driver.version): it changes with every release."""
    out = text.replace(f'"name": "policybot",\n          "version": "{__version__}"',
                       '"name": "policybot",\n          "version": "<version>"')
    assert out != text, "no version in the output: change version() to say where it went"
    return out


def snapshot(name: str, run: Runner) -> None:
    snapshots.check(SNAPSHOTS, name, run.text())


@pytest.fixture
def run(capsys, sample, tmp_path) -> Runner:
    return Runner(capsys, sample.root, tmp_path)


def demo_config(tmp_path: Path, extra: str = "") -> Path:
    """samples/demo's configuration (policy.toml beside it): the tree `sample` follows
    <tmp>/upstream.git into <tmp>/mirror.git."""
    shutil.copy(ROOT / POLICY, tmp_path / "policy.toml")
    path = tmp_path / "policybot.toml"
    path.write_text(f"""\
[mail]
from = "policybot <policybot@example.org>"
operator = "The sample's operator <ops@example.org>"
{extra}
[[trees]]
name = "sample"
repo = "{tmp_path / 'mirror.git'}"
remote = "{tmp_path / 'upstream.git'}"
branch = "master"
policy = "policy.toml"
report_html = "{tmp_path / 'sample.html'}"
""")
    return path


# -- inventory -------------------------------------------------------------------------------------

def test_inventory_table(run, sample):
    assert run("inventory", "--repo", sample.repo, "--rev", "v6.1") == 0
    assert run("inventory", "--repo", sample.repo, "--rev", "v6.2") == 0
    snapshot("inventory-table", run)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_inventory_formats(run, sample, fmt):
    assert run("inventory", "--repo", sample.repo, "--rev", "v6.2", "--format", fmt) == 0
    snapshot(f"inventory-{fmt}", run)


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_inventory_btf(run, sample, fmt):
    assert run("inventory", "--btf", sample.vmlinux, "--format", fmt) == 0
    snapshot(f"inventory-btf-{fmt}", run)


def test_inventory_btf_json_cross_checked(run, sample):
    # the kernel was built from v6.1: nothing to report
    assert run("inventory", "--btf", sample.vmlinux, "--repo", sample.repo, "--rev", "v6.1", "--format", "json") == 0
    snapshot("inventory-btf-json", run)


def test_inventory_btf_cross_check_findings(run, sample):
    # against v6.2: bpf_cgroup_acquire is tagged but not in v6.2's inventory, bpf_task_from_pid not built
    assert run("inventory", "--btf", sample.vmlinux, "--repo", sample.repo, "--rev", "v6.1") == 0
    assert run("inventory", "--btf", sample.vmlinux, "--repo", sample.repo, "--rev", "v6.2") == 1
    snapshot("inventory-btf-cross-check", run)


# -- audit -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "sarif"])
def test_audit(run, sample, fmt):
    assert run("audit", "--repo", sample.repo, "--base", "v6.1", "--rev", "v6.2", "--policy", POLICY,
               "--today", TODAY, "--format", fmt) == 1
    text = run.text()
    if fmt == "sarif":
        sarif.validate(run.out)
    snapshots.check(SNAPSHOTS, f"audit-{fmt}", version(text) if fmt == "sarif" else text)


def test_audit_of_the_current_state(run, sample):
    assert run("audit", "--repo", sample.repo, "--rev", "v6.2", "--policy", POLICY, "--today", TODAY) == 0
    assert run("audit", "--repo", sample.repo, "--rev", "v6.2", "--policy", POLICY, "--today", TODAY,
               "--fail-on", "warning") == 1
    snapshot("audit-current-text", run)


# -- review ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_review(run, sample, tmp_path, fmt):
    config = demo_config(tmp_path)
    assert run("review", "--repo", sample.repo, "--mbox", "samples/series.mbox", "--config", str(config),
               "--today", REVIEW_DAY, "--format", fmt) == 1
    snapshot(f"review-{fmt}", run)


# -- census, and the findings that name its users ----------------------------------------------------

def test_census(run, sample):
    """The sample's own BPF program as a census source, the kept table three ways."""
    assert run("census", sample.user, "--name", "sample-user", "--version", "1.0", "--today", TODAY) == 0
    assert run("census", "--list") == 0
    assert run("census", "--list", "--by", "user") == 0
    assert run("census", "--list", "--format", "json") == 0
    assert run("census", "--list", "--by", "user", "--format", "csv") == 0
    snapshot("census", run)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_audit_names_known_users(run, sample, fmt):
    """v6.2 removes bpf_cgroup_acquire, which the sample's program calls: once the census knows
    it, the finding says whom the removal breaks."""
    assert run("census", sample.user, "--name", "sample-user", "--version", "1.0", "--today", TODAY) == 0
    run.blocks.clear()
    assert run("audit", "--repo", sample.repo, "--base", "v6.1", "--rev", "v6.2", "--policy", POLICY,
               "--today", TODAY, "--format", fmt) == 1
    text = run.text()
    if fmt == "sarif":
        sarif.validate(run.out)
    snapshots.check(SNAPSHOTS, f"audit-users-{fmt}", version(text) if fmt == "sarif" else text)


def test_review_mail_names_known_users(run, sample, tmp_path):
    """The sample series tightens bpf_task_acquire's flags; the review and its mail name the
    program the census found calling it."""
    config = demo_config(tmp_path)
    assert run("census", sample.user, "--name", "sample-user", "--version", "1.0", "--today", REVIEW_DAY) == 0
    run.blocks.clear()
    assert run("review", "--repo", sample.repo, "--mbox", "samples/series.mbox", "--config", str(config),
               "--today", REVIEW_DAY) == 1
    (mail,) = sorted((tmp_path / "state" / "outbox" / "new").iterdir())
    body = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default).get_content()
    run.blocks.append(f"--- the drafted mail's body ---\n{body}")
    snapshot("review-users", run)


# -- maintainers -----------------------------------------------------------------------------------

def test_maintainers(run, sample):
    assert run("maintainers", "--repo", sample.repo, "--rev", "v6.2", "kernel/bpf/helpers.c",
               "Documentation/bpf/kfunc-stability.yaml") == 0
    assert run("maintainers", "--repo", sample.repo, "--rev", "v6.2", "Makefile") == 0
    snapshot("maintainers", run)


# -- the weekly run and the outbox -------------------------------------------------------------------

def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def test_weekly_runs_and_the_outbox(capsys, sample, tmp_path, smtp_server):
    """samples/demo's story: week 1 with v6.1 upstream, week 8 after v6.2 landed, the outbox, sending it."""
    store, port = smtp_server()
    config = demo_config(tmp_path, f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_security = "none"\n')
    upstream = str(tmp_path / "upstream.git")
    git("clone", "-q", "--bare", sample.repo, upstream)
    git("init", "-q", "--bare", str(tmp_path / "mirror.git"))
    runs = {}
    for week, day, tag in (("week1", WEEK1, "v6.1"), ("week8", WEEK8, "v6.2")):
        # upstream's master is at the release the week has
        commit = git("--git-dir", upstream, "rev-parse", f"{tag}^{{commit}}")
        git("--git-dir", upstream, "update-ref", "refs/heads/master", commit)
        runs[week] = Runner(capsys, sample.root, tmp_path)
        assert runs[week]("run", "--config", str(config), "--today", day) == 0
    outbox = Runner(capsys, sample.root, tmp_path)
    assert outbox("outbox", "--config", str(config)) == 0
    assert outbox("outbox", "--config", str(config), "--send") == 0
    assert outbox("outbox", "--config", str(config)) == 0
    assert len(store.messages) == 2
    assert (tmp_path / "sample.html").exists()
    snapshot("run-week1", runs["week1"])
    snapshot("run-week8", runs["week8"])
    snapshot("outbox", outbox)


def test_schedule_list(run, sample, tmp_path):
    (tmp_path / "inbox").mkdir()
    config = demo_config(tmp_path, f'[inbox]\nmaildir = "{tmp_path / "inbox"}"\n')
    before = dt.datetime.now(dt.timezone.utc)
    assert run("schedule", "--config", str(config), "--list") == 0
    after = dt.datetime.now(dt.timezone.utc)
    text = run.text()

    # The next run times come from the clock (`schedule` has no --today): each is checked here
    # against its trigger, then written as <next run>, padded to its own width so that the
    # columns after it stay where they were. (The inbox job's has microseconds, so 7 more
    # characters; in the one run in a million where they are 0 its width would differ.)
    def next_run(m: re.Match) -> str:
        job, when = m[1].strip(), dt.datetime.fromisoformat(m[2])
        if job == "weekly":  # cron mon 06:00 UTC: the first Monday 06:00 after now
            assert when.weekday() == 0 and when.time() == dt.time(6, 0), when
            assert before < when <= after + dt.timedelta(days=7), when
        else:  # every 60 minutes, from now
            assert job == "inbox", job
            assert before + dt.timedelta(minutes=60) <= when <= after + dt.timedelta(minutes=60), when
        return m[1] + "<next run>".ljust(len(m[2]))

    text, n = re.subn(r"^(\w+ +)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00)", next_run, text, flags=re.M)
    assert n == 2, text
    snapshots.check(SNAPSHOTS, "schedule-list", text)


# -- notice ----------------------------------------------------------------------------------------

def test_notice(run, sample):
    assert run("notice", "bpf_task_acquire", "--repo", sample.repo, "--rev", "v6.2", "--replacement",
               "bpf_task_acquire2", "--today", TODAY) == 0
    # a removal date earlier than the stable promise allows is refused, with the reason
    assert run("notice", "bpf_task_acquire", "--repo", sample.repo, "--rev", "v6.2",
               "--removal-not-before", "2024-01-01", "--today", TODAY) == 2
    snapshot("notice", run)


# -- history and report ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_history(run, sample, fmt):
    assert run("history", "--repo", sample.repo, "--format", fmt) == 0
    snapshot(f"history-{fmt}", run)


def test_report(run, sample, tmp_path):
    html = tmp_path / "kfuncs.html"
    assert run("report", "--repo", sample.repo, "--rev", "v6.2", "--policy", POLICY, "--today", TODAY,
               "--format", "json", "--html", str(html)) == 0
    snapshot("report-json", run)
    snapshots.check(SNAPSHOTS, "report-html", run.normalise(html.read_bytes().decode("utf-8")))


def test_report_lists_known_users(run, sample, tmp_path):
    """The stability page's users column and per-kfunc list, once the census knows a program."""
    assert run("census", sample.user, "--name", "sample-user", "--version", "1.0", "--today", TODAY) == 0
    html = tmp_path / "kfuncs.html"
    assert run("report", "--repo", sample.repo, "--rev", "v6.2", "--policy", POLICY, "--today", TODAY,
               "--format", "json", "--html", str(html)) == 0
    page = html.read_text()
    # v6.2 still has bpf_task_acquire, which the program calls strong and through a weak flavor
    assert '<li><span class="mono">bpf_task_acquire</span>: sample_user 1.0 (strong)</li>' in page
    assert '<td data-col="users" class="num" data-sort="1" title="sample_user 1.0 (strong)">1</td>' in page
    assert "bpf_cgroup_acquire</span>" not in page  # removed in v6.2: not a kfunc of the page


# -- rules and explain -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_rules(run, fmt):
    assert run("rules", "--format", fmt) == 0
    snapshot("rules" if fmt == "text" else "rules-json", run)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain(run, fmt):
    # a rule with message variants (named in lower case), one with a single message, one with many
    assert run("explain", "kfunc_removed", "--format", fmt) == 0
    assert run("explain", "KFUNC_PARAM_ADDED", "--format", fmt) == 0
    assert run("explain", "KFUNC_NEEDS_REVIEW", "--format", fmt) == 0
    snapshot("explain" if fmt == "text" else "explain-json", run)


# -- check -----------------------------------------------------------------------------------------

def test_check_text(run, sample):
    # one target: findings, then each extern
    assert run("check", sample.user, "--repo", sample.repo, "--rev", "v6.2", "--today", TODAY) == 1
    # several targets and objects: the matrix
    assert run("check", sample.user, sample.needs_gone, "--repo", sample.repo, "--releases", "v6.*",
               "--today", TODAY) == 1
    assert run("check", sample.user, "--repo", sample.repo, "--rev", "v6.1", "--rev", "v6.2", "--today", TODAY,
               "--fail-on", "never") == 0
    snapshot("check-text", run)


def test_check_json(run, sample):
    assert run("check", sample.user, sample.needs_gone, "--repo", sample.repo, "--rev", "v6.1", "--rev", "v6.2",
               "--today", TODAY, "--format", "json") == 1
    snapshot("check-json", run)


def test_check_sarif(run, sample):
    assert run("check", sample.user, sample.needs_gone, "--repo", sample.repo, "--rev", "v6.2",
               "--today", TODAY, "--format", "sarif") == 1
    sarif.validate(run.out)
    # a fingerprint hashes the object's path, here under a new temporary directory in each run
    # (tests/test_check.py holds two runs on one input to equal fingerprints)
    text = re.sub(r'("policybotFinding/v1": )"[0-9a-f]{64}"', r'\1"<sha256>"', version(run.text()))
    snapshots.check(SNAPSHOTS, "check-sarif", text)


def test_check_btf(run, sample):
    # a compiled kernel alone, then with the source tree it was built from for flags and promises
    assert run("check", sample.user, "--btf", sample.vmlinux, "--today", TODAY) == 0
    assert run("check", sample.user, "--btf", sample.vmlinux, "--repo", sample.repo, "--rev", "v6.1",
               "--today", TODAY, "--fail-on", "info") == 1
    snapshot("check-btf", run)


# -- errors: one line on stderr, exit status 2 ------------------------------------------------------

def test_errors(run, sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in no git repository: --repo has no default
    assert run("inventory", "--rev", "v6.2") == 2
    assert run("audit", "--repo", sample.repo, "--base", "v6.1", "--rev", "v9.9") == 2
    assert run("audit", "--repo", sample.repo, "--rev", "v6.2", "--today", "2023-13-01") == 2
    assert run("explain", "NO_SUCH_RULE") == 2
    assert run("maintainers", "--repo", sample.repo, "--rev", "v6.2~5", "Makefile") == 2
    assert run("check", sample.user) == 2
    assert run("check", sample.vmlinux.removesuffix(".o") + ".c", "--repo", sample.repo, "--rev", "v6.2") == 2
    assert run("report", "--repo", sample.repo) == 2
    snapshot("errors", run)


# -- last (in file order), so that a regeneration has written every snapshot first -----------------

def test_every_snapshot_is_checked():
    snapshots.all_checked(SNAPSHOTS, ALL_SNAPSHOTS)


ALL_SNAPSHOTS = (
    "inventory-table", "inventory-csv", "inventory-json",
    "inventory-btf-table", "inventory-btf-csv", "inventory-btf-json", "inventory-btf-cross-check",
    "audit-text", "audit-markdown", "audit-json", "audit-sarif", "audit-current-text",
    "review-text", "review-json", "maintainers",
    "census", "audit-users-text", "audit-users-json", "audit-users-sarif", "review-users",
    "run-week1", "run-week8", "outbox", "schedule-list", "notice",
    "history-table", "history-csv", "history-json", "report-json", "report-html",
    "rules", "rules-json", "explain", "explain-json",
    "check-text", "check-json", "check-sarif", "check-btf",
    "errors",
)
