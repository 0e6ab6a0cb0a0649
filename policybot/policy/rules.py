"""The rule catalogue, loaded from rules.toml (data, not code)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..vocabulary import LEVEL_KEYS, VERDICTS  # noqa: F401 - re-exported: rules are read in these words


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    compares: str
    verdict: dict[str, str]
    hint: str
    reference: str
    aliases: tuple[str, ...] = ()


def severity(verdict: str) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else -1


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Rule]:
    data = tomllib.loads(resources.files("policybot.policy").joinpath("rules.toml").read_text())
    out = {}
    for rid, d in data.items():
        out[rid] = Rule(rid, d["summary"], d["compares"], dict(d["verdict"]), d["hint"],
                        d["reference"], tuple(d.get("aliases", ())))
    return out


def lookup(rule_id: str) -> Rule | None:
    rules = catalogue()
    if rule_id.upper() in rules:
        return rules[rule_id.upper()]
    return next((r for r in rules.values() if rule_id.upper() in r.aliases), None)
