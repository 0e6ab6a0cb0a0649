"""Renderers: results in, text out; one registry of every output format.

``FORMATS[kind]`` maps each format of a kind of result to the function that
writes it ("module:function" in this package); the first is the default.
A command declares ``--format`` from ``formats(kind)``, so its choices are
exactly what is registered here, and ``render(kind, fmt, result)`` imports
only the module it needs (``policybot --help`` imports none). A new format
is one function and one line below.
"""

from __future__ import annotations

import importlib

FORMATS: dict[str, dict[str, str]] = {
    "inventory": {"table": "inventory:table", "json": "inventory:json_text", "csv": "inventory:csv_text"},
    "compiled-kernel": {"table": "inventory:kernel_table", "json": "inventory:kernel_json",
                        "csv": "inventory:kernel_csv"},
    "audit": {"text": "audit:text", "json": "audit:json_text", "markdown": "audit:markdown",
              "sarif": "sarif:audit"},
    "review": {"text": "review:text", "json": "review:json_text", "sarif": "sarif:review"},
    "check": {"text": "check:text", "json": "check:json_lines", "sarif": "sarif:check"},
    "compat": {"c": "compat:header"},
    "history": {"table": "history:table", "json": "history:json_text", "csv": "history:csv_text"},
    "page": {"json": "page:json_text", "html": "page:html"},
    "census": {"text": "census:run_text", "json": "census:run_json", "csv": "census:run_csv"},
    "census-table": {"text": "census:table_text", "json": "census:table_json", "csv": "census:table_csv"},
    "propose": {"text": "propose:text", "json": "propose:json_text", "mbox": "propose:mbox"},
    "rules": {"text": "rules:table", "json": "rules:json_text"},
    "rule": {"text": "rules:explain", "json": "rules:rule_json_text"},
    # the operator's commands: text for a terminal or the journal
    "run": {"text": "operations:run_text"},
    "outbox": {"text": "operations:outbox_text"},
    "sent": {"text": "operations:sent_text"},
    "schedule": {"text": "operations:schedule_text"},
    "notice": {"text": "operations:notice_text"},
    "doctor": {"text": "operations:doctor_text", "json": "operations:doctor_json"},
}


def formats(kind: str) -> tuple[str, ...]:
    """The formats of ``kind``, the default first."""
    return tuple(FORMATS[kind])


def render(kind: str, fmt: str, result, **options) -> str:
    """``result`` (a kind's record) as text in ``fmt``; ``options`` go to the renderer."""
    module, function = FORMATS[kind][fmt].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)(result, **options)
