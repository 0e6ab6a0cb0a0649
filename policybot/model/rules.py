"""A rule of the catalogue (policybot/policy/rules.toml): data, one entry per rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .vocabulary import PromiseState, RuleFamily, Verdict

DEFAULT_VARIANT = ""  # the variant of a rule with one ``message``


@dataclass(frozen=True)
class Rule:
    id: str
    family: RuleFamily
    summary: str
    compares: str
    verdict: Mapping[PromiseState, Verdict]  # by the kfunc's promise state at the base
    hint: str
    reference: str
    messages: Mapping[str, str] = field(default_factory=dict)  # variant -> str.format template
    aliases: tuple[str, ...] = ()
    users: str = ""  # what a finding says of the kfunc's known users (rules.toml: users)
