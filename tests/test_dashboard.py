"""policybot report --html: the data (build_dashboard) and the page, opened in headless Chromium."""

import datetime as dt
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import jinja2
import pytest

from policybot.app.page import build_dashboard
from policybot.policy.audit import Auditor
from policybot.render.page import html as render_html, json_text as dashboard_json
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.scanner import Scanner
from policybot.policy.config import Policy
from kit.trees import BTF_H, MANIFEST, kernel

TODAY = dt.date(2025, 1, 1)


TASK = "struct task_struct *|struct task_struct *p"
KFUNCS_61 = {
    "bpf_task_acquire": (TASK, "KF_ACQUIRE | KF_RET_NULL"),
    "bpf_task_from_pid": ("struct task_struct *|s32 pid", "KF_ACQUIRE | KF_RET_NULL"),
    "bpf_old": "int|struct sock *sk",
    "bpf_expired": "int|u64 x",
    "bpf_dep": "void|void",
    "bpf_cgroup_acquire": ("struct cgroup *|struct cgroup *cgrp", "KF_ACQUIRE | KF_RCU"),
}
KFUNCS_62 = {**KFUNCS_61, "bpf_task_release": ("void|struct task_struct *p", "KF_RELEASE")}


def manifest(entries: dict) -> str:
    out = "kfuncs:\n"
    for name, fields in entries.items():
        out += f"  {name}:\n" + "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return out


M61 = {"bpf_task_acquire": {"stability": "stable"}, "bpf_old": {"stability": "stable"}}
M62 = {**M61,
       "bpf_task_release": {"stability": "stable"},
       "bpf_old": {"stability": "deprecated", "replacement": "'<b>bpf_new</b>'"},
       "bpf_expired": {"stability": "stable", "since": "'2018-01-01'"}}
M63 = {**M62, "bpf_dep": {"stability": "deprecating"}, "bpf_ghost": {"stability": "stable"}}

# what the policy (5y stable window, 12 months notice) promises, by hand
EXPECTED_ENDS = {
    "bpf_task_acquire": "2027-12-11",  # stable since v6.1 (2022-12-11) + 5y
    "bpf_task_release": "2028-02-19",  # stable since v6.2 (2023-02-19) + 5y
    "bpf_old": "2027-12-11",  # deprecated in v6.2 (notice to 2024-02-19), but stable since v6.1: 5y wins
    "bpf_expired": "2023-01-01",  # since: 2018-01-01 + 5y, over
    "bpf_dep": "",  # deprecating: no end date yet
}


@pytest.fixture
def repo(tmp_path):
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(KFUNCS_61), MANIFEST: manifest(M61)},
             "v6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel(KFUNCS_62), MANIFEST: manifest(M62)}, "v6.2", "2023-02-19T12:00:00")
    b.tag("v6.2")
    b.commit({MANIFEST: manifest(M63)}, "v6.3", "2023-04-23T12:00:00")
    b.tag("v6.3")
    return b.repo


@pytest.fixture
def data(repo):
    return build_dashboard(Auditor(repo, Scanner(repo), Policy(), TODAY), "v6.3")


@pytest.fixture
def page(data, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_html(data), encoding="utf-8")
    return path


# -- the data ---------------------------------------------------------------------------------

def test_dashboard_data(data):
    assert json.loads(dashboard_json(data)) == data  # JSON-ready as it is
    assert (data["rev"], data["today"], data["repo"]) == ("v6.3", "2025-01-01", "linux")
    rows = {k["name"]: k for k in data["kfuncs"]}
    assert list(rows) == sorted(rows)
    assert set(rows) == set(KFUNCS_62)
    acq = rows["bpf_task_acquire"]
    assert (acq["level"], acq["status"], acq["since"], acq["since_release"]) == ("stable", "stable", "2022-12-11", "v6.1")
    assert acq["ends"] == "2027-12-11"
    assert acq["days_left"] == (dt.date(2027, 12, 11) - TODAY).days
    assert acq["flags"] == ["KF_ACQUIRE", "KF_RET_NULL"] and acq["prog_types"] == ["TRACING", "XDP"]
    old = rows["bpf_old"]
    assert (old["level"], old["status"], old["replacement"]) == ("deprecated", "deprecated", "<b>bpf_new</b>")
    assert rows["bpf_expired"]["status"] == "expired" and rows["bpf_expired"]["days_left"] < 0
    assert rows["bpf_dep"]["ends"] is None and rows["bpf_dep"]["days_left"] is None
    assert rows["bpf_task_from_pid"]["level"] == "unstable" and rows["bpf_task_from_pid"]["since"] is None
    assert data["levels"] == {"unstable": 2, "stable": 3, "deprecating": 1, "deprecated": 1}

    bars = {b["name"]: b for b in data["timeline"]["bars"]}
    assert {n: b["end"] or "" for n, b in bars.items()} == EXPECTED_ENDS
    # deprecated after being stable: the stable stretch, then the deprecation period
    assert [(s["kind"], s["start"], s["end"]) for s in bars["bpf_old"]["segments"]] == [
        ("stable", "2022-12-11", "2023-02-19"), ("notice", "2023-02-19", "2027-12-11")]
    assert [s["kind"] for s in bars["bpf_expired"]["segments"]] == ["expired"]
    assert bars["bpf_dep"]["segments"] == [{"kind": "deprecating", "start": "2023-04-23", "end": None}]

    assert [(f["rule"], f["kfunc"]) for f in data["findings"]] == [("DECLARATION_UNKNOWN_KFUNC", "bpf_ghost")]
    hist = {h["name"]: h for h in data["history"]["kfuncs"]}
    assert [r["name"] for r in data["history"]["releases"]] == ["v6.1", "v6.2", "v6.3"]
    assert hist["bpf_task_release"]["first_release"] == "v6.2"
    assert [(e["release"], e["detail"]) for e in hist["bpf_old"]["events"] if e["kind"] == "level"] == [
        ("v6.2", "stable -> deprecated")]
    assert [(e["release"], e["detail"]) for e in hist["bpf_dep"]["events"] if e["kind"] == "level"] == [
        ("v6.3", "unstable -> deprecating")]


def test_history_stops_at_the_revision(repo):
    data = build_dashboard(Auditor(repo, Scanner(repo), Policy(), TODAY), "v6.2")
    assert [r["name"] for r in data["history"]["releases"]] == ["v6.1", "v6.2"]
    assert "bpf_dep" not in {b["name"] for b in data["timeline"]["bars"]}


def test_no_declarations_no_tags(tmp_path):
    b = HistoryBuilder(tmp_path / "bare")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": "int|int x"})}, "one")
    data = build_dashboard(Auditor(b.repo, Scanner(b.repo), Policy(), TODAY), "HEAD")
    assert data["timeline"]["bars"] == [] and data["history"]["kfuncs"] == []
    html = render_html(data)
    assert html.count('<g class="bar') == 0
    assert "no windows to draw" in html and "no history" in html
    assert 'data-name="bpf_foo"' in html


# -- the page, statically ---------------------------------------------------------------------

class Page(HTMLParser):
    """Rows of the page's tables (attributes, in document order), bars and script/style facts."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[dict]] = {}
        self.bars: list[dict] = []
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.root: dict = {}
        self._table = None
        self._row = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "html":
            self.root = a
        for k in ("src", "href", "xlink:href", "action", "data", "poster"):
            if k in a:
                self.refs.append((tag, k, a[k]))
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-name" in a:
            self._row = {**a, "text": ""}
            self.tables[self._table].append(self._row)
        elif tag == "g" and "bar" in a.get("class", "").split():
            self.bars.append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, text):
        if self._row is not None:
            self._row["text"] += text


def visible(rows):
    return [r["data-name"] for r in rows if "hidden" not in r]


def test_page_is_self_contained_escaped_and_complete_without_js(data, page):
    html = page.read_text(encoding="utf-8")
    p = Page(html)
    assert all(v.startswith("#") for _, _, v in p.refs), p.refs  # in-page links only
    assert not {"link", "img", "iframe", "object", "embed"} & p.tags
    assert not re.search(r"url\(|@import|https?://", html)
    assert "<script src" not in html
    # autoescape: the replacement text is shown, not interpreted
    assert "&lt;b&gt;bpf_new&lt;/b&gt;" in html and "<b>bpf_new</b>" not in html
    # without JavaScript every row is there, sorted by name, none hidden
    rows = p.tables["kfunc-table"]
    assert visible(rows) == sorted(KFUNCS_62)
    assert [r["data-name"] for r in p.tables["history-table"]] == sorted(KFUNCS_62)
    assert [r["data-name"] for r in p.tables["findings-table"]] == ["bpf_ghost"]
    # one bar per declared kfunc, with its end date
    assert {b["data-kfunc"]: b["data-end"] for b in p.bars} == EXPECTED_ENDS
    assert 'class="today" data-date="2025-01-01"' in html
    assert "@media print" in html and "prefers-color-scheme: dark" in html


def test_strict_undefined(data):
    broken = {k: v for k, v in data.items() if k != "rev"}
    with pytest.raises(jinja2.UndefinedError):
        render_html(broken)


# -- the page in a real browser ----------------------------------------------------------------

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)

MISSING_BROWSER = "chromium is not on PATH: `make browser` installs it (Debian: apt-get install -y chromium)"


def test_browser_is_there():
    """The browser is a requirement of the tests (`make test` installs it), never a reason to skip."""
    assert CHROMIUM, MISSING_BROWSER


@pytest.fixture
def _chromium():
    assert CHROMIUM, MISSING_BROWSER


needs_browser = pytest.mark.usefixtures("_chromium")  # each browser test fails, with the reason, without it


def browse(tmp_path, url: str) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the console messages Chromium logged."""
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--dump-dom", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]


@needs_browser
def test_browser_harness_sees_console_errors(tmp_path):
    """The 'no console errors' checks below mean something: a broken page is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction();</script>", encoding="utf-8")
    dom, console = browse(tmp_path, bad.as_uri())
    assert "<p>x</p>" in dom
    assert any("undefinedFunction is not defined" in ln for ln in console), console


@needs_browser
def test_browser_sort_and_filter_from_fragment(tmp_path, page):
    dom, console = browse(tmp_path, page.as_uri() + "#sort=name&filter=bpf_task")
    assert console == []
    p = Page(dom)
    assert p.root.get("data-js") == "ready"
    rows = p.tables["kfunc-table"]
    assert visible(rows) == ["bpf_task_acquire", "bpf_task_from_pid", "bpf_task_release"]
    assert len(rows) == len(KFUNCS_62)  # the others are hidden, not gone
    assert visible(p.tables["history-table"]) == ["bpf_task_acquire", "bpf_task_from_pid", "bpf_task_release"]
    assert visible(p.tables["findings-table"]) == []
    assert 'id="filter-status"' in dom and "3 of 7 kfuncs shown" in dom
    assert 'id="controls" hidden' not in dom
    # the bars that do not match are dimmed, still there
    assert len(p.bars) == 5
    assert {b["data-kfunc"] for b in p.bars if "dimmed" not in b["class"]} == {"bpf_task_acquire", "bpf_task_release"}


@needs_browser
def test_browser_sorts_by_days_left_descending_empty_last(tmp_path, page, data):
    dom, console = browse(tmp_path, page.as_uri() + "#sort=days&dir=desc")
    assert console == []
    rows = Page(dom).tables["kfunc-table"]
    days = {k["name"]: k["days_left"] for k in data["kfuncs"]}
    with_days = sorted((n for n in days if days[n] is not None), key=lambda n: (-days[n], n))
    without = sorted(n for n in days if days[n] is None)
    assert visible(rows) == with_days + without
    assert with_days[0] == "bpf_task_release" and with_days[-1] == "bpf_expired"
    assert 'data-sorted-by="days:desc"' in dom
    assert re.search(r'<th data-col="days"[^>]*aria-sort="descending"', dom)


@needs_browser
def test_browser_query_string_level_filter_and_since_sort(tmp_path, page):
    dom, console = browse(tmp_path, page.as_uri() + "?sort=-since&level=stable")
    assert console == []
    rows = Page(dom).tables["kfunc-table"]
    # stable ones, newest promise first: v6.2 (2023-02-19), v6.1 (2022-12-11), since: 2018-01-01
    assert visible(rows) == ["bpf_task_release", "bpf_task_acquire", "bpf_expired"]


@needs_browser
def test_browser_timeline_has_one_bar_per_declared_kfunc(tmp_path, page, data):
    dom, console = browse(tmp_path, page.as_uri())
    assert console == []
    p = Page(dom)
    assert len(p.bars) == len(EXPECTED_ENDS)
    assert {b["data-kfunc"]: b["data-end"] for b in p.bars} == EXPECTED_ENDS
    declared = {k["name"] for k in data["kfuncs"] if k["level"] in ("stable", "deprecating", "deprecated")}
    assert {b["data-kfunc"] for b in p.bars} == declared
    assert {b["data-kfunc"]: b["data-level"] for b in p.bars} == {
        "bpf_task_acquire": "stable", "bpf_task_release": "stable", "bpf_expired": "stable",
        "bpf_old": "deprecated", "bpf_dep": "deprecating"}
    # bars sit in order of their dates: a later end is further right
    ends = {}
    for m in re.finditer(r'<g class="bar[^"]*" data-kfunc="(\w+)".*?</g>', dom, re.S):
        rects = re.findall(r'<rect class="seg[^"]*" x="([\d.]+)"[^>]*width="([\d.]+)"', m.group(0))
        ends[m.group(1)] = float(rects[-1][0]) + float(rects[-1][1])
    assert ends["bpf_expired"] < ends["bpf_task_acquire"] == ends["bpf_old"] < ends["bpf_task_release"]
    today = re.search(r'<line class="today" data-date="2025-01-01" x1="([\d.]+)"', dom)
    assert today and ends["bpf_expired"] < float(today.group(1)) < ends["bpf_task_acquire"]


@needs_browser
def test_browser_prints_to_pdf(tmp_path, page):
    pdf = tmp_path / "report.pdf"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'pdf-profile'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
           page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000


def test_jit_table(tmp_path):
    """One row per architecture whose JIT can call kfuncs, a column per release."""
    jit = "bool bpf_jit_supports_kfunc_call(void)\n{\n\treturn %s;\n}\n"
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(KFUNCS_61),
              "arch/arm64/net/bpf_jit_comp.c": jit % "true",
              "arch/sparc/net/bpf_jit_comp_64.c": jit % "false"}, "v6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"arch/powerpc/net/bpf_jit_comp.c": jit % "IS_ENABLED(CONFIG_PPC64)"}, "v6.2",
             "2023-02-19T12:00:00")
    b.tag("v6.2")
    data = build_dashboard(Auditor(b.repo, Scanner(b.repo), Policy(), TODAY), "v6.2")
    assert data["history"]["jit"]["arches"] == {"v6.1": ["arm64"], "v6.2": ["arm64", "powerpc"]}
    p = Page(render_html(data))
    rows = p.tables["jit-table"]
    assert [r["data-arch"] for r in rows] == ["arm64", "powerpc"]  # sparc's JIT answers false
    cells = {r["data-arch"]: r["text"].split() for r in rows}
    assert cells == {"arm64": ["arm64", "v6.1", "yes", "yes"],
                     "powerpc": ["powerpc", "v6.2", "no", "IS_ENABLED(CONFIG_PPC64)"]}
    assert json.loads(dashboard_json(data))["history"]["jit"]["arch_since"] == {"arm64": "v6.1",
                                                                              "powerpc": "v6.2"}


def test_a_published_page_words_an_acknowledgement_as_mail_does(data):
    """The page may be published (a tree's report_html): an allowlisted break says who allowed it,
    until when and why, not where the operator's policy file is; the JSON keeps it all."""
    import datetime as dt
    import html as htmllib
    from policybot.model.findings import Acknowledgement, Finding
    from policybot.render.findings import finding_json
    ack = Acknowledgement("allowlist", reason="the replacement lands next cycle", until=dt.date(2025, 6, 30),
                          source="/etc/policybot/policy.toml:12")
    f = Finding("KFUNC_REMOVED", "bpf_gone", "violation", "bpf_gone is no longer registered", None, None,
                None, None, "keep it registered", ack)
    doc = finding_json(f)
    assert doc["ack"] == {"kind": "allowlist", "reason": "the replacement lands next cycle", "until": "2025-06-30",
                          "source": "/etc/policybot/policy.toml:12", "name": "", "address": "", "where": ""}
    assert doc["acknowledged"] == "allowlist (/etc/policybot/policy.toml:12): the replacement lands next cycle"
    shown = {**data, "findings": [doc], "policy": {**data["policy"], "path": "/etc/policybot/policy.toml"}}
    text = htmllib.unescape(render_html(shown))
    assert "allowed by this tree's operator until 2025-06-30: the replacement lands next cycle" in text
    assert "/etc/policybot" not in text and "policy.toml" not in text
    assert "hint: keep it registered" not in text  # an accepted break asks nothing
