"""The rule catalogue (``policybot rules``) and one rule (``policybot explain``)."""

from __future__ import annotations

import json

from ..model.rules import DEFAULT_VARIANT, Rule
from ..model.vocabulary import LEVEL_KEYS


def rule_json(r: Rule) -> dict:
    return {"id": r.id, "family": r.family, "summary": r.summary, "compares": r.compares, "verdict": r.verdict,
            "message": r.messages.get(DEFAULT_VARIANT),  # as rules.toml: one message, or named variants
            "messages": {v: t for v, t in r.messages.items() if v != DEFAULT_VARIANT},
            "hint": r.hint, "reference": r.reference, "aliases": list(r.aliases)}


def table(rules: dict[str, Rule]) -> str:
    width = max(len(r) for r in rules)
    family_width = max(len(r.family) for r in rules.values())
    return "".join(f"{r.id.ljust(width)}  {r.family.ljust(family_width)}  {r.summary}\n" for r in rules.values())


def json_text(rules: dict[str, Rule]) -> str:
    return json.dumps([rule_json(r) for r in rules.values()], indent=2) + "\n"


def rule_json_text(rule: Rule) -> str:
    return json.dumps(rule_json(rule), indent=2) + "\n"


def explain(rule: Rule) -> str:
    out = [f"{rule.id}: {rule.summary}", f"family: {rule.family}", f"\ncompares: {rule.compares}",
           "\nverdict by the kfunc's status at the base:"]
    out += [f"  {level:15} {rule.verdict[level]}" for level in LEVEL_KEYS]
    out.append("\nmessage:" if len(rule.messages) == 1 else "\nmessages:")
    out += [f"  {variant}: {template}" if variant else f"  {template}" for variant, template in rule.messages.items()]
    out += [f"\nhint: {rule.hint}", f"reference: {rule.reference}"]
    if rule.aliases:
        out.append(f"aliases: {', '.join(rule.aliases)}")
    return "\n".join(out) + "\n"
