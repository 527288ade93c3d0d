"""House rules for ui/ that a reader relies on: module names that say what they hold without shadowing the
standard library or repeating a core module's name, and no function longer than 120 lines."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = sorted((ROOT / "ui").glob("*.py"))
MAX_LINES = 120


def test_ui_exists():
    assert len(UI) >= 10 and (ROOT / "ui" / "pickers.py") in UI


def test_no_ui_module_shadows_the_standard_library_or_a_core_module():
    core_names = {p.stem for p in (ROOT / "core").rglob("*.py")} | {p.name for p in (ROOT / "core").iterdir()
                                                                     if p.is_dir()}
    names = {p.stem for p in UI} - {"__init__"}
    assert sorted(names & set(sys.stdlib_module_names)) == []
    assert sorted(names & core_names) == []


def test_no_ui_function_is_longer_than_120_lines():
    long = []
    for path in UI:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_every_chart_is_drawn_through_show_chart():
    """ui.layout.show_chart draws with ui.charts.to_vega_lite; a direct st.altair_chart would switch altair's
    process-wide data transformer under another session's feet (and validate on every script run)."""
    sources = UI + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    assert [p.name for p in sources if ".altair_chart(" in p.read_text()] == []


def test_no_page_or_ui_module_looks_at_its_callers_frames():
    """A page passes its key (page_header(page=...), question_gate(...)); nothing in ui/ or pages/ finds it by
    walking the interpreter's stack or reading a caller's file name."""
    sources = UI + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    banned = ("inspect.stack", "_getframe", "inspect.currentframe", "f_back", "f_code")
    hits = [f"{p.relative_to(ROOT)}: {b}" for p in sources for b in banned if b in p.read_text(encoding="utf-8")]
    assert hits == []


def test_every_page_passes_its_own_key():
    """The key a page gives its header is its script's name, defined once (PAGE) and given to the class question
    too: the question bank, the banner and the deep-link re-entry all name a page by its script."""
    for path in sorted((ROOT / "pages").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.stem == "home":
            assert 'enter("home")' in text
            continue
        assert f'PAGE = "{path.stem}"' in text and "page=PAGE" in text, path.name
        assert "question_gate(" not in text or "question_gate(PAGE)" in text, path.name
