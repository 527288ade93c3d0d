"""The house rules a reader of the whole project relies on, checked on the source itself: no import cycles among
the project's modules (in-function imports counted), a few packages directly under core/ rather than a flat
folder, package __init__s that hold a docstring and nothing else, names imported from the module that defines
them, no frame inspection, and no function (or page script) longer than 120 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("core", "ui", "pages")
MAX_LINES = 120
MAX_CORE_MODULES = 8  # modules directly in core/ (the rest live in its packages)


def project_modules() -> dict[str, Path]:
    """Dotted name -> file for app.py and every module under core/, ui/, pages/ and bench/."""
    mods = {"app": ROOT / "app.py"}
    for top in (*SOURCE_DIRS, "bench"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its file (module level or inside a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for i in range(len(parts), 0, -1):  # the longest prefix that is a project module
                candidate = ".".join(parts[:i])
                if candidate in known:
                    if candidate != name and not name.startswith(candidate + "."):
                        found.add(candidate)
                    break
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each one is an import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_planted_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_the_projects_modules():
    mods = project_modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    assert graph["core.train.engine"], "the import graph should see the engine's imports"
    assert strongly_connected(graph) == []


def test_core_is_a_few_packages_not_a_flat_folder():
    top = sorted(p.name for p in (ROOT / "core").glob("*.py"))
    assert len(top) <= MAX_CORE_MODULES, top
    for package in ("data", "models", "train", "runs", "explain", "lessons", "cli"):
        assert (ROOT / "core" / package / "__init__.py").exists(), package


def test_package_inits_hold_a_docstring_and_nothing_else():
    """Every name has one import path: the module that defines it."""
    offenders = []
    for init in (ROOT / "core").rglob("__init__.py"):
        if init.parent == ROOT / "core":
            continue  # the top package sets OpenMP's wait policy before any torch import (see its comment)
        body = ast.parse(init.read_text(encoding="utf-8")).body
        rest = body[1:] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body
        if not body or rest:
            offenders.append(str(init.relative_to(ROOT)))
    assert offenders == []


def test_no_lazy_exports_and_no_frame_inspection():
    banned = ("lazy_exports", "inspect.stack", "_getframe", "inspect.currentframe")
    offenders = [f"{path.relative_to(ROOT)}: {word}"
                 for top in SOURCE_DIRS for path in (ROOT / top).rglob("*.py")
                 for word in banned if word in path.read_text(encoding="utf-8")]
    assert offenders == []


def page_script_lines(tree: ast.Module) -> int:
    """A page's top-level script, read as one function: its statements other than imports, definitions and
    the module docstring."""
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    body = [n for n in tree.body if not isinstance(n, skip)]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return sum(n.end_lineno - n.lineno + 1 for n in body)


def test_no_function_or_page_script_is_longer_than_120_lines():
    long = []
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
            if top == "pages" and page_script_lines(tree) > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: the page script ({page_script_lines(tree)} lines)")
    assert long == []


def test_the_cli_help_imports_no_torch():
    """`python -m core --help` answers at once: no command module pulls torch in at import time."""
    code = "import sys, runpy; sys.argv = ['core', '--help']\ntry:\n    runpy.run_module('core', run_name='__main__')\n" \
           "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "usage" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "False"
