"""The rule catalogue, for `policybot rules` and `policybot explain`."""

from __future__ import annotations

from ..errors import PolicybotError
from ..model.rules import Rule


def rules() -> dict[str, Rule]:
    from ..policy.rules import catalogue
    return catalogue()


def rule(rule_id: str) -> Rule:
    """The rule of that id or alias, case not counting."""
    from ..policy.rules import lookup
    found = lookup(rule_id)
    if found is None:
        raise PolicybotError(f"unknown rule {rule_id!r} (see `policybot rules`)")
    return found
