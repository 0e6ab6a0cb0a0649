"""Records that cross module boundaries are named frozen dataclasses, not tuples (issue 13)."""

from __future__ import annotations

import dataclasses
import datetime as dt

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
