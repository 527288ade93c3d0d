"""Facts about the repository as a whole: every third-party module the project imports is declared in a
requirements file (so a fresh `make test` installs it)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("core", "ui", "pages", "scripts", "bench", "tests")
# scripts/ run with their own folder on sys.path, so a script imports its neighbour by its bare name
LOCAL = {"core", "ui", "pages", "scripts", "bench", "tests", "app"} | {p.stem for p in (ROOT / "scripts").glob("*.py")}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py")) + [ROOT / "app.py"]


def imported_top_modules() -> dict[str, list[str]]:
    """Each absolute import's top-level module -> the files importing it (relative imports are local)."""
    found: dict[str, list[str]] = {}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def declared_distributions() -> set[str]:
    """The distribution names in requirements*.txt (options such as `-r` skipped, extras and versions cut)."""
    names = set()
    for path in ROOT.glob("requirements*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(normalized(re.match(r"[A-Za-z0-9._-]+", line).group(0)))
    return names


def test_requirement_lines_parse():
    declared = declared_distributions()
    assert {"torch", "streamlit", "pytest", "websockets", "ray"} <= declared


def test_every_third_party_import_is_declared_in_a_requirements_file():
    declared = declared_distributions()
    by_module = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(imported_top_modules().items()):
        if module in LOCAL or module in sys.stdlib_module_names:
            continue
        dists = {normalized(d) for d in by_module.get(module, [module])}  # not installed here: its own name
        if not dists & declared:
            missing.append(f"{module} (distribution {', '.join(sorted(dists))}; imported by {files[0]})")
    assert missing == []
