"""The records every layer shares: plain frozen dataclasses whose fields are typed with the
StrEnums of ``vocabulary``. Stages fill them, the judge decides their verdicts, renderers
print them; nothing here reads a tree, a file or the clock."""
