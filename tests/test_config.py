"""config/policybot.toml: the shipped example loads, and every error names key and line."""

import io
from pathlib import Path

import pytest

from policybot.app.config import load_config
from policybot.errors import ConfigError
from policybot.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_example_loads():
    cfg = load_config(ROOT / "config" / "policybot.toml")
    assert [t.name for t in cfg.trees] == ["bpf-next"]
    assert (cfg.schedule.weekly_day, cfg.schedule.weekly_hour, cfg.schedule.inbox_minutes) == ("mon", 6, 60)
    assert cfg.mail.send is False and cfg.mail.smtp_security == "starttls"
    assert cfg.trees[0].policy.stable_window.months == 60  # config/policy.toml, relative to the file


@pytest.mark.parametrize("text, message", [
    ('[mail]\nfrom = "bot <b@x.org>"\nsend = "yes"\n', r"policybot.toml:3: mail.send: must be true or false"),
    ('[mail]\nsmtp_security = "ssl"\n', r"policybot.toml:2: mail.smtp_security: must be"),
    ('[schedule]\nweekly = "monday 6am"\n', r"policybot.toml:2: schedule.weekly: expected \"mon 06:00\""),
    ('[inbox]\nmaildirr = "x"\n', r"policybot.toml:2: inbox.maildirr: unknown key"),
    ('[[trees]]\nname = "a"\n', r"policybot.toml:1: trees\[0\]: missing repo"),
    ('[[trees]]\nname = "a"\nrepo = "r"\n[[trees]]\nname = "a"\nrepo = "s"\n',
     r"policybot.toml:4: trees\[1\].name: duplicate tree name 'a'"),
    ('[[trees]]\nname = "a"\nrepo = "r"\nbranchh = "x"\n', r"policybot.toml:1: trees\[0\].branchh: unknown key"),
    ('[state\n', r"policybot.toml: .*line 1"),
    ('[patchwork]\nurl = "https://pw.example.org"\nproject = "bpf"\n',
     r"policybot.toml:1: patchwork.token_file: missing"),
    ('[patchwork]\nurl = "https://pw.example.org"\nproject = "bpf"\ntoken_file = "t"\ncontext = "policy bot"\n',
     r"policybot.toml:5: patchwork.context: letters, digits, - and _ only"),
    ('[patchwork]\nurl = "pw.example.org"\nproject = "bpf"\ntoken_file = "t"\n',
     r"policybot.toml:2: patchwork.url: not an http\(s\) URL"),
    ('[patchwork]\nurl = "https://pw.example.org"\nprojects = "bpf"\n', r"policybot.toml:3: patchwork.projects: unknown key"),
])
def test_errors_name_key_and_line(tmp_path, text, message):
    (tmp_path / "policybot.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "policybot.toml")


def test_patchwork_settings_and_the_token_file(tmp_path):
    """[patchwork] read, its token_file taken from the config's directory and read only when it
    is its owner's alone (mode 0600)."""
    (tmp_path / "policybot.toml").write_text('[patchwork]\nurl = "https://pw.example.org"\nproject = "bpf"\n'
                                             'token_file = "pw-token"\n')
    cfg = load_config(tmp_path / "policybot.toml")
    assert (cfg.patchwork.url, cfg.patchwork.project, cfg.patchwork.context) == (
        "https://pw.example.org", "bpf", "policybot")
    assert cfg.patchwork.token_file == str(tmp_path / "pw-token")
    (tmp_path / "pw-token").write_text("s3cret-token\n")
    (tmp_path / "pw-token").chmod(0o644)
    with pytest.raises(ConfigError, match="pw-token: patchwork token file must be owned by you and have mode 0600") as e:
        cfg.patchwork_client()
    assert "s3cret" not in str(e.value)
    (tmp_path / "pw-token").chmod(0o600)
    assert cfg.patchwork_client().token == "s3cret-token"
    assert cfg.patchwork_client(with_token=False).token == ""
    assert load_config(None).patchwork_client() is None  # no [patchwork]: no checks


def test_progress_only_on_a_terminal():
    out = io.StringIO()
    p = Progress(enabled=True, stream=out)
    p.start("scanning v6.12", 200, "files")
    p.update(50)
    p.update(200)
    p.done()
    text = out.getvalue()
    assert "\rscanning v6.12: 50/200 files (25%)" in text and "200/200 files (100%)" in text
    assert text.endswith("\r\x1b[K")  # the line is cleared when done
    quiet = io.StringIO()  # StringIO is no terminal: nothing is written
    p = Progress(stream=quiet)
    p.start("x", 10)
    p.update(10)
    p.done()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("name", ["policybot.toml", "policy.toml"])
def test_a_nesting_100000_deep_is_one_line_naming_the_file_and_line(tmp_path, capsys, name):
    """tomllib recurses once per level: a hostile file once ended in "RecursionError: input nested
    too deeply", naming nothing; now the file and the line where it nests too deeply."""
    from policybot.cli import main
    path = tmp_path / name
    path.write_text('# a comment with [[[ brackets ]]] and "a # in a string" = "[["\n'
                    "[mail]\nfrom = 'bot <bot@example.org>'\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")
    if name == "policy.toml":  # the policy's reader is the same: asked directly, no tree needed
        from policybot.policy.config import load_policy
        with pytest.raises(ConfigError) as e:
            load_policy(path)
        assert str(e.value) == f"{path}:4: arrays or tables nested more than 32 deep"
        return
    assert main(["outbox", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"policybot: {path}:4: arrays or tables nested more than 32 deep\n"


@pytest.mark.parametrize("text, message", [
    ("[propose]\nmin_users = -1\n", "policy.toml:2: propose.min_users: must be a whole number, 0 or more"),
    ("[propose]\nmin_reviews = 2\n", "policy.toml:2: propose.min_reviews: unknown key (known: min_users, "
                                     "min_unchanged_releases, write)"),
    ("[propose]\nwrite = \"yaml\"\n", "policy.toml:2: propose.write: must be \"manifest\" or \"kernel-doc\", got 'yaml'"),
    ("[ledger]\npaths = \"tools/\"\n", "policy.toml:2: ledger.paths: must be a list of paths in the tree"),
])
def test_propose_and_ledger_settings_name_key_and_line(tmp_path, text, message):
    from policybot.policy.config import load_policy
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_policy(str(path))
    assert str(e.value).endswith(message), str(e.value)


def test_propose_and_ledger_settings_are_read(tmp_path):
    from policybot.policy.config import load_policy
    path = tmp_path / "policy.toml"
    path.write_text('[propose]\nmin_users = 3\nmin_unchanged_releases = 6\n[ledger]\npaths = ["tools/bpf/"]\n')
    p = load_policy(str(path))
    assert (p.propose_min_users, p.propose_min_unchanged_releases, p.ledger_paths) == (3, 6, ("tools/bpf/",))


def test_semantics_answers_are_read_and_bad_ones_named_by_line(tmp_path):
    """[semantics]: the operator's answer for a flag or suffix policybot does not know."""
    from policybot.policy.config import load_policy
    path = tmp_path / "policy.toml"
    path.write_text('[semantics]\nKF_SPINLOCK_SAFE = "neutral"\n__const_map = "tightening"\n')
    assert load_policy(str(path)).semantics == {"KF_SPINLOCK_SAFE": "neutral", "__const_map": "tightening"}
    for bad, why in (('KF_X = "maybe"', "must be 'tightening', 'relaxing', 'neutral'"),
                     ('bpf_foo = "neutral"', "not a KF_\\* flag nor an argument suffix")):
        path.write_text(f"# answers\n[semantics]\n{bad}\n")
        with pytest.raises(ConfigError, match=f"{path}:3: semantics\\.\\w+: {why}"):
            load_policy(str(path))
