"""Facts about the repository as a whole: every third-party module the project imports is declared in a
requirements file (so a fresh `make test` installs it), and every file path that code and docs mention exists."""

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


PATH_REF = re.compile(r"(?<![\w/.])((?:core|ui|pages|tests|scripts|bench|docs)/[\w/]+\.(?:py|md))")
# Mentioned on purpose though no such file exists. Each entry: (file, path it mentions).
NOT_FILES = {
    ("docs/HELPERS.md", "tests/core/test_x.py"),  # a placeholder in a command line: "your test file"
}
# Old flat-layout paths in core/runs/, which another branch is rewriting right now; the lead empties this set
# when that branch lands (core/runs/trainer.py, core/runs/records.py are the files meant).
WAITING_FOR_THE_RUNS_REWRITE: set[tuple[str, str]] = set()


def mentioned_paths() -> set[tuple[str, str]]:
    """(file, path) for each repository path written in a .py or .md file (outside hidden folders and .venv)."""
    found = set()
    for path in sorted([*ROOT.rglob("*.py"), *ROOT.rglob("*.md")]):
        rel = path.relative_to(ROOT)
        if any(part.startswith(".") for part in rel.parts) or path == Path(__file__).resolve():
            continue  # this file names the missing paths it allows
        for match in PATH_REF.finditer(path.read_text(encoding="utf-8")):
            found.add((rel.as_posix(), match.group(1)))
    return found


def test_the_path_pattern_finds_paths_and_leaves_urls_and_dotted_names():
    text = "see core/train/engine.py, docs/CLUSTER.md; not https://x.org/docs/a.md, core.train.engine, a/core/b.py"
    assert [m.group(1) for m in PATH_REF.finditer(text)] == ["core/train/engine.py", "docs/CLUSTER.md"]


def test_every_path_mentioned_in_code_and_docs_exists():
    missing = {(f, p) for f, p in mentioned_paths() if not (ROOT / p).exists()}
    assert sorted(missing - NOT_FILES - WAITING_FOR_THE_RUNS_REWRITE) == []
    assert sorted((NOT_FILES | WAITING_FOR_THE_RUNS_REWRITE) - missing) == []  # an entry fixed: drop it here


CHECKPOINT_NAME = re.compile(r"""["'](?:best|last)\.pt["']""")
# core/runs/ is being rewritten on another branch: its literals go when it lands (the lead empties this set).
CHECKPOINT_NAMES_WAITING: set[str] = set()


def test_checkpoint_file_names_are_written_once():
    """core.train.files' LAST / BEST and checkpoint_for are the one home of a run folder's checkpoint names
    (tests keep literals: they check the names on disk)."""
    sources = [p for d in ("core", "ui", "pages", "scripts", "bench") for p in (ROOT / d).rglob("*.py")]
    found = {p.relative_to(ROOT).as_posix() for p in sources + [ROOT / "app.py"]
             if CHECKPOINT_NAME.search(p.read_text(encoding="utf-8"))}
    assert sorted(found - CHECKPOINT_NAMES_WAITING) == ["core/train/files.py"]
