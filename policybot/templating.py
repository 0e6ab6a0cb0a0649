"""The jinja2 templates: one loader for mail (plain text) and the page (HTML, escaped).

Search order: an operator's directory (config ``mail.templates``), the
source tree's ``templates/``, then ``<prefix>/share/policybot/templates``
where a non-editable install puts them. StrictUndefined everywhere: a
missing variable is an error, never an empty hole in a sent mail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2

SOURCE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INSTALLED_TEMPLATES = Path(sys.prefix) / "share" / "policybot" / "templates"


def template_dirs(override: str | None = None) -> list[str]:
    dirs = [override] if override else []
    dirs += [str(d) for d in (SOURCE_TEMPLATES, INSTALLED_TEMPLATES) if d.is_dir()]
    return dirs


def environment(override: str | None = None, html: bool = False) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs(override)), undefined=jinja2.StrictUndefined,
        autoescape=html, keep_trailing_newline=True, trim_blocks=html, lstrip_blocks=html)
