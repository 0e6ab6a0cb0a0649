"""Records that cross module boundaries are named frozen dataclasses, not tuples (issue 13)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from policybot.app.config import load_config
from policybot.app.weekly import RunFailure, weekly_run
from policybot.mail.outbox import SendFailure
from policybot.state import State


def test_a_failed_tree_is_a_run_failure_record(tmp_path):
    (tmp_path / "notarepo").write_text("this is not a repository\n")
    config = tmp_path / "policybot.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n[mail]\nfrom = "bot@example.org"\n'
                      f'list = "bpf@example.org"\n[[trees]]\nname = "broken"\nrepo = "{tmp_path / "notarepo"}"\n')
    _, summary = weekly_run(load_config(config), State(state_dir=tmp_path / "state"), jobs=("audit",),
                            today=dt.date(2024, 1, 8))
    [failure] = summary.failures
    assert type(failure) is RunFailure
    assert failure.what == "tree broken"
    assert str(tmp_path / "notarepo") in failure.reason
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.reason = ""


def test_send_failure_is_a_named_record():
    failure = SendFailure("<a@b>", "SMTPDataError: 550 no")
    assert (failure.msgid, failure.error) == ("<a@b>", "SMTPDataError: 550 no")
    assert [f.name for f in dataclasses.fields(SendFailure)] == ["msgid", "error"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.error = ""


# -- records back from JSON (policybot/records.py) and the series cache it serves -------------------

def test_revive_rebuilds_nested_records_equal_to_the_stored_ones():
    from policybot.mail.b4wrap import Patch, Series, Trailer
    from policybot.records import revive
    patch = Patch("<1@x>", "[PATCH 1/1] bpf: x", 1, 1, 1, "Jöhn \udcff Doe", "j@example.org", "", ("a@x",), (),
                  ("<0@x>",), "diff --git a/f b/f\n", "msg", (Trailer("Acked-by", "A <a@x>", ""),), "date",
                  (Trailer("Kfunc-Break-Acked-by", "M <m@x>", "m@x"),), "")
    series = Series(1, "bpf: x", "John", None, [patch], None, [2], ["<junk@x>: no Message-ID"])
    back = revive(Series, json.loads(json.dumps(dataclasses.asdict(series))))
    assert back == series
    assert isinstance(back.patches[0].trailers[0], Trailer) and isinstance(back.patches[0].to, tuple)
    assert back.cover is None and back.base_commit is None


def test_a_repeated_review_reads_its_series_from_the_cache_not_b4(tmp_path, capsys, monkeypatch):
    from policybot.mail import b4wrap
    from kit.series import DROP_FOO, run_one, single_patch
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    # hostile headers too: an encoded CR LF and non-ASCII text must come back from the cache as b4 gave them
    mail = mail.replace("Subject: [PATCH] bpf: drop bpf_foo",
                        "Subject: [PATCH] =?utf-8?q?bpf=3A_dr=C3=B6p_bpf=5Ffoo=0D=0ABcc=3A_v=40example=2Enet?=", 1)
    state = str(tmp_path / "state")
    first = run_one(capsys, tmp_path, mail, "--state-dir", state, "--format", "json")
    assert first[0] in (0, 1), first

    def no_b4(*a, **k):
        raise AssertionError("b4 asked again for a series the cache holds")

    monkeypatch.setattr(b4wrap, "read_messages", no_b4)
    monkeypatch.setattr(b4wrap, "series_from_messages", no_b4)
    again = run_one(capsys, tmp_path, mail, "--state-dir", state, "--format", "json")
    assert json.loads(again[1])["patches"] == json.loads(first[1])["patches"]
    assert json.loads(again[1])["series"] == json.loads(first[1])["series"]
    # another mbox is another key: b4 is asked (and here refuses)
    other = mail.replace("Subject:", "X-Extra: 1\nSubject:", 1)
    rc, out, err = run_one(capsys, tmp_path, other, "--state-dir", state)
    assert rc == 2 and "b4 asked again" in err
