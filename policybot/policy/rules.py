"""The rule catalogue, loaded from rules.toml (data, not code).

Each rule carries its family and the wording of its messages: one ``message``
template, or a ``messages`` table of named variants. Detectors name the rule,
the variant and the fields; ``render_message`` writes the text.
"""

from __future__ import annotations

import string
import tomllib
from functools import lru_cache
from importlib import resources

from ..model.rules import DEFAULT_VARIANT, Rule
from ..model.vocabulary import PromiseState, RuleFamily, Verdict


class MessageError(LookupError):
    """A detector asked for a message its rule does not have, or gave the wrong fields: a bug."""


def _messages(rid: str, d: dict) -> dict[str, str]:
    if ("message" in d) == ("messages" in d):
        raise MessageError(f"rules.toml: {rid} needs exactly one of message and messages")
    return {DEFAULT_VARIANT: d["message"]} if "message" in d else dict(d["messages"])


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Rule]:
    data = tomllib.loads(resources.files("policybot.policy").joinpath("rules.toml").read_text())
    out = {}
    for rid, d in data.items():
        verdicts = {PromiseState(k): Verdict(v) for k, v in d["verdict"].items()}
        out[rid] = Rule(rid, RuleFamily(d["family"]), d["summary"], d["compares"], verdicts, d["hint"],
                        d["reference"], _messages(rid, d), tuple(d.get("aliases", ())), d["users"])
    return out


def users_sentence(rule_id: str, kfunc: str, users: tuple[str, ...]) -> str:
    """What a finding of ``rule_id`` about ``kfunc`` says of its known users ("" for none)."""
    if not users:
        return ""
    template = catalogue()[rule_id].users
    joined = users[0] if len(users) == 1 else ", ".join(users[:-1]) + " and " + users[-1]
    fields = {"users": joined, "kfunc": kfunc, "s": "s" if len(users) == 1 else "",
              "they": "it" if len(users) == 1 else "they"}
    return template.format(**{k: v for k, v in fields.items() if k in template_fields(template)})


def lookup(rule_id: str) -> Rule | None:
    rules = catalogue()
    if rule_id.upper() in rules:
        return rules[rule_id.upper()]
    return next((r for r in rules.values() if rule_id.upper() in r.aliases), None)


@lru_cache(maxsize=None)
def template_fields(template: str) -> frozenset[str]:
    """The names a message template writes ({name}), as str.format reads them."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def render_message(rule_id: str, variant: str = DEFAULT_VARIANT, /, **fields: object) -> str:
    """The text of ``rule_id``'s message ``variant`` with ``fields``.

    An unknown rule or variant, a missing field or a field the template does
    not use raises MessageError: the wording and the detector have drifted apart.
    """
    rule = catalogue().get(rule_id)
    if rule is None:
        raise MessageError(f"no rule {rule_id}")
    template = rule.messages.get(variant)
    if template is None:
        raise MessageError(f"{rule_id} has no message {variant!r} (it has: "
                           f"{', '.join(repr(v) for v in rule.messages)})")
    wanted = template_fields(template)
    if wanted != fields.keys():
        raise MessageError(f"{rule_id} message {variant!r} writes {sorted(wanted)}, "
                           f"was given {sorted(fields)}")
    return template.format(**fields)
