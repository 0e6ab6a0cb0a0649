"""The architecture, checked: imports point down the layers, never up, never in a circle.

Layers, lowest first (docs/design.md):
  0 model    the records and the shared words (model/), and the plumbing every
             stage uses (errors, state, cache, progress, templating, paths, ...)
  1 kernel   git tree -> inventory (kernel/), compiled BTF and BPF objects (btf/), who
             uses each kfunc (usage/)
  2 policy   inventory -> findings (policy/): declarations, calendar, diff, the
             one judge, audit, check
  3 render   results -> text, JSON, CSV, Markdown, SARIF, HTML (render/)
  4 mail     findings -> mail (mail/)
  5 app      one function per use case (app/), with the run context
  6 entry    the CLI (cli/: one module per command) and scheduler.py
A module may import its own layer or lower ones; the modules of one layer
must not import each other in a cycle either. The CLI imports only the
application layer, the renderers and the records (and its own modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "policybot"

MODEL, KERNEL, POLICY, RENDER, MAIL, APP, ENTRY = range(7)
NAMES = ["model", "kernel", "policy", "render", "mail", "app", "entry"]

# Modules at the top of the package, by layer; packages take their directory's layer.
TOP_LEVEL = {
    "policybot": MODEL, "policybot.errors": MODEL, "policybot.state": MODEL, "policybot.cache": MODEL,
    "policybot.progress": MODEL, "policybot.templating": MODEL,
    "policybot.gitbuild": MODEL, "policybot.paths": MODEL, "policybot.addresses": MODEL,
    "policybot.records": MODEL, "policybot.schema": MODEL, "policybot.forked": MODEL,
    "policybot.scratch": MODEL, "policybot.bounded": MODEL,
    "policybot.scheduler": ENTRY, "policybot.__main__": ENTRY,
}
PACKAGES = {"model": MODEL, "kernel": KERNEL, "btf": KERNEL, "usage": KERNEL, "policy": POLICY, "render": RENDER, "mail": MAIL,
            "app": APP, "cli": ENTRY}
SPECIAL: dict[str, int] = {}
# What the CLI may import besides itself: the use cases, the renderers, the records, and the
# plumbing of the model layer that says what went wrong (errors) or shows progress.
CLI_MAY_IMPORT = ("policybot.app", "policybot.render", "policybot.model", "policybot.errors",
                  "policybot.progress", "policybot.scheduler", "policybot")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> int:
    if name in SPECIAL:
        return SPECIAL[name]
    if name in TOP_LEVEL:
        return TOP_LEVEL[name]
    parts = name.split(".")
    if len(parts) >= 2 and parts[1] in PACKAGES:
        return PACKAGES[parts[1]]
    raise AssertionError(f"{name}: no layer assigned; add it to tests/test_layers.py")


def resolve_import(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every policybot module `name` imports, at any depth of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_import(name, is_package, node)
            # `from . import x` may name a module; otherwise the base module is the import.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "policybot" or target.startswith("policybot."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                found.append((node.lineno, target))
    return found


def graph() -> dict[str, list[tuple[int, str]]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def test_every_module_has_a_layer():
    for name in modules():
        layer(name)


def test_no_upward_import():
    upward = []
    for name, edges in graph().items():
        for line, target in edges:
            if layer(target) > layer(name):
                upward.append(f"{modules()[name].relative_to(PACKAGE.parent)}:{line}: {name} ({NAMES[layer(name)]})"
                              f" imports {target} ({NAMES[layer(target)]})")
    assert upward == []


def test_the_cli_imports_only_use_cases_renderers_and_records():
    stray = []
    for name, edges in graph().items():
        if not name.startswith("policybot.cli"):
            continue
        for line, target in edges:
            if target.startswith("policybot.cli") or any(target == m or target.startswith(m + ".")
                                                         for m in CLI_MAY_IMPORT if m != "policybot"):
                continue
            if target == "policybot":
                continue
            stray.append(f"{modules()[name].relative_to(PACKAGE.parent)}:{line}: {name} imports {target}")
    assert stray == []


def test_a_command_module_imports_nothing_heavy_at_its_top():
    """`policybot --help` imports every command module: their own imports wait until they run."""
    heavy = []
    for path in sorted((PACKAGE / "cli" / "commands").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level and node.module not in (None, "options", "errors"):
                if not (node.level == 3 and node.module == "errors"):
                    heavy.append(f"{path.name}:{node.lineno}: from {'.' * node.level}{node.module}")
    assert heavy == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in edges}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = GREY
        stack.append(n)
        for m in sorted(edges[n]):
            if colour[m] == GREY:
                return stack[stack.index(m):] + [m]
            if colour[m] == WHITE and (cycle := visit(m)):
                return cycle
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(edges):
        if colour[n] == WHITE and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle():
    g = graph()
    # A package's __init__ is not a cycle with its own modules.
    edges = {n: {t for _, t in e if t != n and not n.startswith(t + ".")} for n, e in g.items()}
    assert find_cycle(edges) is None


def test_cycle_finder_finds_a_cycle():
    # The checker itself must be able to fail.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_upward_import_is_detected(tmp_path):
    # A kernel module importing policy is resolved to the policy layer.
    node = ast.parse("from ..policy.config import Policy").body[0]
    target = resolve_import("policybot.kernel.timeline", False, node)
    assert target == "policybot.policy.config"
    assert layer(target) > layer("policybot.kernel.timeline")


# Longest function allowed anywhere in policybot/ (lines from `def` to its last line).
MAX_FUNCTION_LINES = 80


def long_functions(source: str, where: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{where}:{node.lineno}: {node.name} is {length} lines")
    return out


def test_no_function_longer_than_80_lines():
    too_long = [line for name, path in modules().items()
                for line in long_functions(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert too_long == []


def test_long_function_is_detected():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}", "t.py") == [f"t.py:1: f is {MAX_FUNCTION_LINES + 1} lines"]
    assert long_functions(f"def f():\n{body[: body.rindex('    x')]}", "t.py") == []
