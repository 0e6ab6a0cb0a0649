"""policybot doctor (issue 26): each check finds its problem against the real thing: a git
remote without the configured branch, an SMTP port nothing listens on, a real SMTP server
(aiosmtpd on 127.0.0.1) that takes EHLO and AUTH and receives no mail, a state database that
is not SQLite, a template that does not compile. Exit status 0 when ready, 1 on a problem,
2 when there is no configuration to check. Nothing is written: the state is not created, a
broken one is left as it was, the mirror gets no refs.
"""

from __future__ import annotations

import json
import sqlite3

import pygit2
import pytest

from policybot.cli import main
from kit.mail import authenticator, free_port
from kit.weekly import Bot

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def smtp(port: int, extra: str = "") -> str:
    return f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_security = "none"\n{extra}'


def doctor(capsys, bot: Bot, *more: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["doctor", "--config", str(bot.config), *more])
    out, err = capsys.readouterr()
    assert err == ""
    return rc, out.splitlines()


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("PROBLEM ")]


def line_of(lines: list[str], check: str) -> str:
    (line,) = [ln for ln in lines if ln.split(None, 1)[1].startswith(check + ": ")]
    return line


def test_a_ready_deployment(tmp_path, capsys, smtp_server):
    store, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    rc, lines = doctor(capsys, bot)
    assert rc == 0, lines
    assert problems(lines) == [] and lines[-1] == "0 problems: ready to run"
    assert line_of(lines, "tree bpf-next") == (f"ok       tree bpf-next: {bot.upstream.path}: master at "
                                               f"{bot.upstream.head[:12]}")
    assert line_of(lines, "smtp").startswith(f"ok       smtp: SMTP server 127.0.0.1:{port}: connected")
    assert line_of(lines, "state") == (f"ok       state: {bot.state_dir}/policybot.sqlite: not created yet "
                                       f"(the first run creates it)")
    assert line_of(lines, "templates").startswith("ok       templates: ")
    assert store.messages == []  # SMTP checked, no mail sent
    assert not bot.state_dir.exists()  # nothing created
    assert list(pygit2.Repository(str(bot.mirror)).references) == []  # nothing fetched into the mirror


def test_a_mistyped_branch_is_found(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    bot.config.write_text(bot.config.read_text().replace('branch = "master"', 'branch = "mastr"'))
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    assert problems(lines) == [f"PROBLEM  tree bpf-next: {bot.upstream.path} has no branch 'mastr' "
                               f"(fix [[trees]] branch; it has: master)"]
    assert lines[-1] == "1 problem: fix each line marked PROBLEM, then run policybot doctor again"


def test_a_mistyped_branch_of_a_tree_without_remote_is_found(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    text = bot.config.read_text().replace(f'repo = "{bot.mirror}"', f'repo = "{bot.upstream.path}"')
    bot.config.write_text(text.replace(f'remote = "{bot.upstream.path}"\n', "").replace('"master"', '"mastr"'))
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    assert problems(lines) == [f"PROBLEM  tree bpf-next: {bot.upstream.path}: unknown revision 'mastr' "
                               f"(fix [[trees]] branch)"]


def test_smtp_down_is_found(tmp_path, capsys):
    port = free_port()  # nothing listens there
    bot = Bot(tmp_path, mail=smtp(port))
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    (line,) = problems(lines)
    assert line.startswith(f"PROBLEM  smtp: SMTP server 127.0.0.1:{port}: ConnectionRefusedError")
    assert line.endswith("(fix [mail] smtp_host, smtp_port, smtp_security, smtp_auth_file, or the server)")


def test_smtp_auth_is_tried_and_no_mail_sent(tmp_path, capsys, smtp_server, monkeypatch):
    store, port = smtp_server(authenticator=authenticator(b"policybot", b"right-pass"),
                              auth_require_tls=False, auth_required=True)
    bot = Bot(tmp_path, mail=smtp(port))
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "policybot")
    monkeypatch.setenv("POLICYBOT_SMTP_PASSWORD", "right-pass")
    rc, lines = doctor(capsys, bot)
    assert rc == 0, lines
    assert line_of(lines, "smtp") == (f"ok       smtp: SMTP server 127.0.0.1:{port}: connected, EHLO, no TLS, "
                                      f"AUTH as policybot; nothing sent")
    monkeypatch.setenv("POLICYBOT_SMTP_PASSWORD", "wrong-Pa55")
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    (line,) = problems(lines)
    assert "535 authentication failed" in line and "wrong-Pa55" not in line
    assert store.messages == []


def test_smtp_without_the_starttls_it_needs_is_found(tmp_path, capsys, smtp_server):
    _, port = smtp_server()  # offers no STARTTLS
    bot = Bot(tmp_path, mail=f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_security = "starttls"\n')
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    (line,) = problems(lines)
    assert line.startswith(f"PROBLEM  smtp: SMTP server 127.0.0.1:{port}: ") and "STARTTLS" in line


def test_a_state_database_that_is_not_sqlite_is_found_and_left_alone(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    bot.state_dir.mkdir()
    db = bot.state_dir / "policybot.sqlite"
    junk = b"this was a policybot state before the disk went bad\n" * 200
    db.write_bytes(junk)
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    assert problems(lines) == [f"PROBLEM  state: state database {db}: file is not a database (restore it from "
                               f"a backup, or move it away: the next run starts a new one)"]
    assert db.read_bytes() == junk and sorted(p.name for p in bot.state_dir.iterdir()) == ["policybot.sqlite"]


def test_a_state_database_of_a_newer_policybot_is_found(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    bot.state_dir.mkdir()
    con = sqlite3.connect(bot.state_dir / "policybot.sqlite")
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema', '99');")
    con.close()
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    assert problems(lines) == [f"PROBLEM  state: {bot.state_dir}/policybot.sqlite: schema 99, this policybot "
                               f"knows up to 5 (upgrade policybot)"]


def test_a_state_after_a_run_is_ok(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port))
    assert bot.run(capsys, "2024-01-08")[0] == 0
    rc, lines = doctor(capsys, bot)
    assert rc == 0, lines
    assert line_of(lines, "state") == f"ok       state: {bot.state_dir}/policybot.sqlite: schema 5"


def test_a_template_that_does_not_compile_is_found(tmp_path, capsys, smtp_server):
    _, port = smtp_server()
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "review.txt.j2").write_text("Hello {{ author }},\n\n{% for f in findings %}\n{{ f.kfunc }\n")
    bot = Bot(tmp_path, mail=smtp(port, f'templates = "{templates}"\n'))
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    (line,) = problems(lines)
    assert line.startswith(f"PROBLEM  templates: {templates}/review.txt.j2:4: ") and line.endswith("(fix the template)")


def test_a_config_that_does_not_load_skips_the_rest(tmp_path, capsys):
    bot = Bot(tmp_path)
    bot.config.write_text(bot.config.read_text().replace("[schedule]", "[schedule]\nweekly = \"someday\""))
    rc, lines = doctor(capsys, bot)
    assert rc == 1
    (line,) = problems(lines)
    assert line.startswith(f"PROBLEM  config: {bot.config}:") and "schedule.weekly" in line
    assert [ln.split()[:2] for ln in lines[1:-1]] == [["skipped", "trees:"], ["skipped", "smtp:"],
                                                      ["skipped", "patchwork:"], ["skipped", "state:"],
                                                      ["skipped", "templates:"]]


def test_json_and_the_exit_status_without_a_config(tmp_path, capsys, monkeypatch):
    port = free_port()
    bot = Bot(tmp_path, mail=smtp(port))
    rc, lines = doctor(capsys, bot, "--format", "json")
    data = json.loads("\n".join(lines))
    assert rc == 1 and data["problems"] == 1
    assert [(c["check"], c["status"]) for c in data["checks"]] == [
        ("config", "ok"), ("tree bpf-next", "ok"), ("smtp", "problem"), ("state", "ok"), ("templates", "ok")]
    monkeypatch.delenv("POLICYBOT_CONFIG", raising=False)
    assert main(["doctor"]) == 2
    assert "give --config FILE or set $POLICYBOT_CONFIG" in capsys.readouterr().err


@pytest.mark.parametrize("token", ["maintainer", "unknown", "stranger"])
def test_the_patchwork_token_is_tried_and_nothing_posted(tmp_path, capsys, smtp_server, patchwork_server, token):
    """Against the real patchwork server: a token it accepts is ok, one it does not know is the
    problem, named with the key to fix (Patchwork.verify posts nothing)."""
    from kit.patchwork import BOT_USER, PROJECT
    pw = patchwork_server
    secret = tmp_path / "pw-token"
    secret.write_text({"maintainer": pw.token, "unknown": "0" * 40, "stranger": pw.stranger_token}[token] + "\n")
    secret.chmod(0o600)
    store, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp(port),
              extra=f'[patchwork]\nurl = "{pw.url}"\nproject = "{PROJECT}"\ntoken_file = "{secret}"\n')
    rc, lines = doctor(capsys, bot)
    if token == "maintainer":
        assert rc == 0, lines
        assert line_of(lines, "patchwork") == (f"ok       patchwork: {pw.url}: token accepted, project 'bpf', "
                                               f"which its user {BOT_USER!r} maintains")
    elif token == "stranger":  # accepted, but its checks would be refused: it maintains nothing
        assert rc == 1 and problems(lines) == [line_of(lines, "patchwork")]
        assert "the token's user maintains no part of project 'bpf'" in line_of(lines, "patchwork")
    else:
        assert rc == 1
        assert problems(lines) == [line_of(lines, "patchwork")]
        assert line_of(lines, "patchwork").startswith(f"PROBLEM  patchwork: {pw.url}/api/1.3/users/")
        assert "HTTP 403" in line_of(lines, "patchwork") and "fix [patchwork] url, project or token_file" in \
            line_of(lines, "patchwork")
    assert store.messages == []
