import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kit import btf  # noqa: E402  (tests/kit/: the shared helpers)
from kit.realtree import KERNEL_CACHE  # noqa: E402  (read on import, before _isolated_environment moves HOME)
from kit.realtree import unmarked_real_tree_use  # noqa: E402
from kit.series import SeriesFixture, make_series  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """No test sees the user's git config, state or policybot config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("POLICYBOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("POLICYBOT_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _sigpipe_restored():
    """policybot.cli.main sets SIGPIPE to its default (`policybot ... | head` ends quietly); a test
    that calls main in-process must not leave it so, or the next test whose in-process server
    writes to a closed socket kills pytest itself (exit 141, no report)."""
    import signal
    before = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, before)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test that needs the real kernel trees (kit.realtree.REAL_TREE_FIXTURES: kernel_repo, binaries
    and the fixtures built on them) fails loudly here, before any fixture is set up, unless it is
    marked realtree: a unit run never fetches, builds or reads the kernel cache. (A session fixture
    cannot check this itself: its request.node is the session, and it runs for the first test only.)"""
    why = unmarked_real_tree_use(item)
    if why:
        pytest.fail(why, pytrace=False)


@pytest.fixture(scope="session")
def kernel_repo() -> str:
    """A bare repository with Debian's linux-source 6.1 (tag v6.1) and 6.12 (tag v6.12)."""
    out = subprocess.run([str(ROOT / "scripts" / "kernel-trees"), KERNEL_CACHE],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def kernel_state(tmp_path_factory):
    """One parse cache for all real-tree tests of a session."""
    from policybot.cache import Cache
    return Cache(tmp_path_factory.mktemp("kernel-state"))


@pytest.fixture(scope="session")
def real_inventories(kernel_repo, kernel_state):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    repo = open_repo(kernel_repo)
    scanner = Scanner(repo, kernel_state)
    return {rev: scanner.inventory(rev) for rev in ("v6.1", "v6.12")}


@pytest.fixture(scope="session")
def binaries():
    """{release: {"vmlinuz": path, "ko": [paths]}}: Debian's compiled kernels (scripts/kernel-binaries)."""
    return btf.kernel_binaries()


@pytest.fixture(scope="session")
def extracted(binaries, kernel_repo, tmp_path_factory):
    """{release: vmlinux ELF}, decompressed by the v7.2 tree's scripts/extract-vmlinux."""
    return btf.extract_vmlinux(binaries, kernel_repo, tmp_path_factory.mktemp("vmlinux"))


@pytest.fixture
def series(tmp_path) -> SeriesFixture:
    """v1 (2 patches, one breaking bpf_bar) and v2 (4 patches) of one series (kit.series.make_series)."""
    return make_series(tmp_path)


@pytest.fixture(scope="session")
def patchwork_server(tmp_path_factory):
    """A real patchwork 3.2.1 on 127.0.0.1 with sqlite, a project "bpf" and a maintainer's token
    (kit.patchwork.start_patchwork); each test loads its own series."""
    from kit.patchwork import start_patchwork
    pw = start_patchwork(tmp_path_factory.mktemp("patchwork"))
    yield pw
    pw.stop()


@pytest.fixture
def smtp_server():
    """start(port=None, **controller_kw) -> (store, port): a real SMTP server on 127.0.0.1."""
    from aiosmtpd.controller import Controller

    from kit.mail import SmtpStore, free_port
    started = []

    def start(port: int | None = None, **kw):
        handler = SmtpStore()
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kw)
        controller.start()
        started.append(controller)
        return handler, controller.port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(autouse=True)
def _no_smtp_credentials(monkeypatch):
    monkeypatch.delenv("POLICYBOT_SMTP_USER", raising=False)
    monkeypatch.delenv("POLICYBOT_SMTP_PASSWORD", raising=False)


SCHEDULERS = ("simple", "central", "flatcg", "qmap")  # of the 7.2 tree's tools/sched_ext/


@pytest.fixture(scope="session")
def schedulers(kernel_repo, extracted, tmp_path_factory) -> dict[str, Path]:
    """{name: object}: the 7.2 tree's sched_ext schedulers compiled with clang in the run, against a
    vmlinux.h bpftool dumps from Debian's 7.2 kernel and the tree's own libbpf headers, into
    tools/sched_ext/build/ of the tree's files they need (its top-level Kbuild, MAINTAINERS and
    Makefile too: a kernel tree, whose tools/ programs are in-tree)."""
    from kit.bpf import clang
    from kit.btf import bpftool
    root = tmp_path_factory.mktemp("sched_ext")
    archive = subprocess.run(["git", "-C", kernel_repo, "archive", "v7.2", "Kbuild", "MAINTAINERS", "Makefile",
                              "tools/sched_ext", "tools/lib/bpf", "tools/include", "scripts/bpf_doc.py",
                              "include/uapi/linux/bpf.h"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    gen = root / "gen"
    gen.mkdir()
    (gen / "vmlinux.h").write_text(subprocess.run([bpftool(), "btf", "dump", "file", str(extracted["7.2"]),
                                                   "format", "c"], check=True, capture_output=True,
                                                  text=True).stdout)
    (gen / "bpf_helper_defs.h").write_text(subprocess.run(
        [sys.executable, "scripts/bpf_doc.py", "--header", "--file", "include/uapi/linux/bpf.h"],
        cwd=root, check=True, capture_output=True, text=True).stdout)
    src = root / "tools" / "sched_ext"
    (src / "build").mkdir()
    out = {}
    for s in SCHEDULERS:
        obj = src / "build" / f"scx_{s}.bpf.o"
        r = subprocess.run([clang(), "-g", "-O2", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86",
                            "-I", "include", "-I", "include/bpf-compat", "-I", str(gen), "-I", "../lib",
                            "-I", "../include/uapi", "-c", f"scx_{s}.bpf.c", "-o", str(obj)],
                           cwd=src, capture_output=True, text=True)
        if r.returncode == 0:
            out[s] = obj
    assert "simple" in out, "scx_simple must compile"
    return out


LEDGER_PATHS = ("Makefile", "include/linux/btf.h", "kernel/sched/ext", "tools/sched_ext")


@pytest.fixture(scope="session")
def sched_ext_7_3(kernel_repo, tmp_path_factory) -> Path:
    """A repository of sched_ext as 7.2 and 7.3 have it (LEDGER_PATHS of each tree, tagged v7.2 and
    v7.3): 7.2 from the tests' repository, 7.3 from Debian's trixie-backports linux-source-7.3
    (scripts/debian-apt, into the kernel cache when it is not there)."""
    cache = Path(KERNEL_CACHE)
    debs = sorted(cache.glob("linux-source-7.3_*.deb"))
    if not debs:
        subprocess.run([str(ROOT / "scripts" / "debian-apt"), str(cache), "trixie-backports", "--", "download",
                        "linux-source-7.3"], cwd=cache, check=True, capture_output=True)
        debs = sorted(cache.glob("linux-source-7.3_*.deb"))
    root = tmp_path_factory.mktemp("sched_ext_7_3")
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)

    def commit(version: str, date: str) -> None:
        env = dict(os.environ, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_AUTHOR_NAME="t",
                   GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", f"Linux {version}"], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "tag", "-a", "-m", f"Linux {version}", f"v{version}"], check=True,
                       env=env)

    archive = subprocess.run(["git", "-C", kernel_repo, "archive", "v7.2", *LEDGER_PATHS], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    commit("7.2", "2026-08-16T21:00:00+00:00")
    for p in LEDGER_PATHS:
        subprocess.run(["git", "-C", str(repo), "rm", "-r", "-q", p], check=True)
    source = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], stdout=subprocess.PIPE)
    inner = subprocess.Popen(["tar", "-xO", "./usr/src/linux-source-7.3.tar.xz"], stdin=source.stdout,
                             stdout=subprocess.PIPE)
    subprocess.run(["tar", "-xJ", "-C", str(repo), "--strip-components=1", "--wildcards",
                    *(f"linux-source-7.3/{p}" + ("" if "." in p.rsplit("/", 1)[-1] or p == "Makefile" else "/*")
                      for p in LEDGER_PATHS)], stdin=inner.stdout, check=True)
    assert inner.wait() == 0 and source.wait() == 0
    commit("7.3", "2026-10-25T21:00:00+00:00")
    return repo
