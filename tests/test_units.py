"""The shipped systemd units (config/*.service, config/*.timer) pass review and still work
(issue 26): ``systemd-analyze security --offline=true`` rates each service's exposure at
most 2.0, ``systemd-analyze verify`` finds nothing, and a real ``policybot run`` (a fetch,
an audit, a review of an inbox patch, a mail sent over SMTP to 127.0.0.1), traced with
strace, makes only the system calls the units' SystemCallFilter= allows, opens only the
socket families RestrictAddressFamilies= allows, maps memory writable and executable only
in git (git grep's PCRE2 JIT: the units leave MemoryDenyWriteExecute= off, since git grep
fails under it), touches no device PrivateDevices= hides and no part of /proc
but its own (ProcSubset=pid) and writes only under its state directory and $TMPDIR
(ProtectSystem=strict, StateDirectory=, PrivateTmp=). systemd-analyze and strace come from
scripts/test-tools (Debian's systemd and strace): the tests never skip for want of them.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pygit2
import pytest

from kit.mail import BOT
from kit.weekly import Upstream, patch_mail

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
SERVICES = ("policybot.service", "policybot-run.service")
TIMERS = ("policybot-run.timer",)
MAX_EXPOSURE = 2.0
INSTALLED = "/opt/policybot/bin/policybot"  # the virtualenv of docs/operators.md


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=120)


def exposure(unit: Path) -> float:
    done = analyze("security", "--offline=true", str(unit))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def directives(unit: Path) -> dict[str, list[str]]:
    """key -> its values, in order, of every section (a unit file's own reading, no systemd)."""
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


# -- the rating -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_rated_at_most_2(name):
    assert exposure(CONFIG / name) <= MAX_EXPOSURE


def test_the_rating_is_read_right(tmp_path):
    """The unit as it was before issue 26 (a User= and nothing else) is UNSAFE (9.2 with
    systemd 252): what the parse above reads is the number systemd-analyze prints."""
    unit = tmp_path / "bare.service"
    unit.write_text("[Service]\nType=simple\nUser=policybot\nExecStart=/opt/policybot/bin/policybot schedule\n")
    done = analyze("security", "--offline=true", str(unit))
    assert f"{exposure(unit)} UNSAFE" in done.stdout and exposure(unit) > 9.0


def test_the_units_verify(tmp_path):
    """``systemd-analyze verify`` with ExecStart= pointing at this checkout's policybot (it checks
    that the command exists): no unknown key, no bad value, the timer's service found."""
    here = Path(sys.executable).parent / "policybot"
    assert here.exists(), here
    for name in SERVICES + TIMERS:
        (tmp_path / name).write_text((CONFIG / name).read_text().replace(INSTALLED, str(here)))
    done = analyze("verify", *(str(tmp_path / n) for n in SERVICES + TIMERS))
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr
    # and verify does complain about a mistyped key (what the empty stderr above rules out)
    bad = tmp_path / "policybot.service"
    bad.write_text(bad.read_text().replace("ProtectHome=yes", "ProtectHme=yes"))
    assert "Unknown key 'ProtectHme'" in analyze("verify", str(bad)).stderr


@pytest.mark.parametrize("name", SERVICES)
def test_the_state_directory_is_the_one_policybot_uses(name):
    d = directives(CONFIG / name)
    assert d["StateDirectory"] == ["policybot"]
    assert "POLICYBOT_STATE_DIR=/var/lib/policybot" in d["Environment"]
    assert d["ExecStart"][0].split()[0] == INSTALLED
    assert d["User"] == ["policybot"] and d["ProtectSystem"] == ["strict"]
    assert set(" ".join(d["RestrictAddressFamilies"]).split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_the_timer_starts_the_one_pass_service():
    """A .timer runs nothing itself (systemd-analyze security rates it as if it were a bare
    service): what it starts is policybot-run.service, rated above."""
    d = directives(CONFIG / "policybot-run.timer")
    assert d.get("Unit", ["policybot-run.service"]) == ["policybot-run.service"]
    assert directives(CONFIG / "policybot-run.service")["ExecStart"][0].split()[1:] == ["run"]
    assert directives(CONFIG / "policybot.service")["ExecStart"][0].split()[1:] == ["schedule"]


# -- what a real run needs of the sandbox -----------------------------------------------------------------


def filter_groups() -> dict[str, list[str]]:
    """Every @group of ``systemd-analyze syscall-filter``: its members (calls and @groups)."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in analyze("syscall-filter").stdout.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.split()[0], [])
        elif line.startswith("    ") and current is not None and not line.strip().startswith("#"):
            current.append(line.split()[0])
        elif not line.strip():
            current = None
    return groups


def calls_of(spec: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for item in spec:
        out |= calls_of(groups[item], groups) if item.startswith("@") else {item}
    return out


def allowed_calls(unit: Path) -> set[str]:
    """The system calls the unit's SystemCallFilter= lines allow (an allow list, then ~ deny lists)."""
    groups = filter_groups()
    allowed: set[str] = set()
    for value in directives(unit)["SystemCallFilter"]:
        if value.startswith("~"):
            allowed -= calls_of(value[1:].split(), groups)
        else:
            allowed |= calls_of(value.split(), groups)
    return allowed


TRACED = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)")
OPEN_FOR_WRITING = re.compile(r'^\d+\s+(?:openat|open|creat)\((?:AT_FDCWD, )?"([^"]+)", ([A-Z_|]+)')
SOCKET = re.compile(r"^\d+\s+socket\((AF_[A-Z0-9]+)")
PATH = re.compile(r'"(/(?:proc|dev)/[^"]*)"')
# what PrivateDevices= leaves in /dev, and the part of /proc ProcSubset=pid shows
PRIVATE_DEV = re.compile(r"/dev/(null|zero|full|random|urandom|tty|ptmx|pts|shm|mqueue|hugepages|std(in|out|err)|fd)(/|$)")
OWN_PROC = re.compile(r"/proc/(self|thread-self|\d+)(/|$)")
GIT_EXEC = re.compile(r'^(\d+)\s+execve\("[^"]*/git", ')
WX_MAPPING = re.compile(r"^\d+\s+(?:mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE")


def world(tmp_path: Path, smtp_port: int) -> tuple[Path, Path]:
    """The deployment of docs/operators.md in small: the state directory /var/lib/policybot (the
    mirror inside it), an inbox with one patch, SMTP on 127.0.0.1. (config, state directory)"""
    upstream = Upstream(tmp_path / "upstream.git")
    state = tmp_path / "var" / "lib" / "policybot"
    mirror = state / "trees" / "bpf-next.git"
    pygit2.init_repository(str(mirror), bare=True)
    inbox = tmp_path / "inbox"
    mailbox.Maildir(inbox, create=True).add(patch_mail(tmp_path))
    config = tmp_path / "etc" / "policybot.toml"
    config.parent.mkdir()
    config.write_text(f"""\
[state]
dir = "{state}"
[mail]
from = "{BOT}"
list = "bpf@vger.kernel.org"
send = true
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
[inbox]
maildir = "{inbox}"
[[trees]]
name = "bpf-next"
repo = "{mirror}"
remote = "{upstream.path}"
branch = "master"
""")
    return config, state


def traced(argv: list[str], tmp_path: Path, state: Path) -> tuple[subprocess.Popen, Path, Path]:
    """``python -m policybot ARGV`` under strace -f, as the service runs it: the system user's
    home is the state directory, a private $TMPDIR. (strace, its output, the TMPDIR)"""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    trace = tmp_path / f"strace-{argv[0]}.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYBOT_", "XDG_", "GIT_"))}
    env.update(HOME=str(state), TMPDIR=str(tmp))
    proc = subprocess.Popen([shutil.which("strace"), "-f", "-qq", "-o", str(trace), sys.executable, "-m",
                             "policybot", *argv], cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc, trace, tmp


def check_sandbox(trace: Path, state: Path, tmp: Path) -> None:
    """What the trace did is what the units allow."""
    lines = trace.read_text().splitlines()
    made = {m.group(1) for line in lines if (m := TRACED.match(line))}
    if os.geteuid() == 0:
        made.discard("fchown")  # SQLite gives its journal the database's owner only when run as root
    for name in SERVICES:
        assert sorted(made - allowed_calls(CONFIG / name)) == [], name
    families = {m.group(1) for line in lines if (m := SOCKET.match(line))}
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    # W+X memory only in git (git grep compiles its patterns with PCRE2's JIT), never in policybot
    git = {m.group(1) for line in lines if (m := GIT_EXEC.match(line))}
    assert {line.split()[0] for line in lines if WX_MAPPING.match(line)} <= git
    touched = {m.group(1) for line in lines for m in PATH.finditer(line)}
    assert sorted(p for p in touched if not (PRIVATE_DEV.match(p) or OWN_PROC.match(p))) == []
    writable = (str(state) + "/", str(tmp) + "/", "/dev/null")
    written = {m.group(1) for line in lines if (m := OPEN_FOR_WRITING.match(line))
               and re.search(r"O_WRONLY|O_RDWR|O_CREAT", m.group(2))}
    assert sorted(p for p in written if not p.startswith(writable)) == []


def test_a_real_run_stays_inside_the_sandbox(tmp_path, smtp_server):
    """policybot-run.service's command: a whole pass."""
    store, port = smtp_server()
    config, state = world(tmp_path, port)
    proc, trace, tmp = traced(["run", "--config", str(config)], tmp_path, state)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    # the run did its work: the reply to the patch went out over SMTP
    assert b"Subject: Re: [PATCH bpf-next] bpf: drop bpf_foo" in b"".join(raw for _, _, raw in store.messages)
    check_sandbox(trace, state, tmp)


def test_the_scheduler_starts_and_stops_inside_the_sandbox(tmp_path, smtp_server):
    """policybot.service's command: the scheduler's start (its threads, its job store in the
    state database) and its stop on SIGTERM; the jobs it runs are the pass traced above."""
    _, port = smtp_server()
    config, state = world(tmp_path, port)
    proc, trace, tmp = traced(["schedule", "--config", str(config)], tmp_path, state)
    try:
        deadline = time.monotonic() + 60
        while "policybot schedule: started" not in (trace.read_text() if trace.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        pid = int(trace.read_text().split(None, 1)[0])  # the python strace started
        os.kill(pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and err.splitlines()[-1] == "policybot schedule: stopped", err
    check_sandbox(trace, state, tmp)


def test_git_grep_needs_the_memory_that_memorydenywriteexecute_denies(tmp_path):
    """Why the units leave MemoryDenyWriteExecute= off: git grep under the same rule (the
    kernel's PR_SET_MDWE, Linux 6.3 and later, which systemd uses for it) stops, because it
    compiles its patterns with PCRE2's JIT. The units must not deny it."""
    for name in SERVICES:
        assert not re.search(r"^MemoryDenyWriteExecute=(yes|true|1)", (CONFIG / name).read_text(), re.M), name
    pygit2.init_repository(str(tmp_path / "r"))
    (tmp_path / "r" / "a.c").write_text("int bpf_foo;\n")
    subprocess.run(["git", "-C", str(tmp_path / "r"), "add", "a.c"], check=True)
    grep = ["git", "-C", str(tmp_path / "r"), "grep", "-l", "-F", "-w", "-e", "bpf_foo", "--cached"]
    assert subprocess.run(grep, capture_output=True, text=True).stdout == "a.c\n"
    # PR_SET_MDWE (65), PR_MDWE_REFUSE_EXEC_GAIN (1), in a child that then runs the same grep
    mdwe = f"import ctypes, os, sys; ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0 or sys.exit(99); os.execvp('git', {grep!r})"
    denied = subprocess.run([sys.executable, "-c", mdwe], capture_output=True, text=True)
    assert denied.returncode != 99, "this kernel has no PR_SET_MDWE (Linux 6.3 and later)"
    assert denied.returncode == 128 and "JIT" in denied.stderr, denied
