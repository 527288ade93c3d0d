"""AppTest harness: the whole app (app.py + navigation) with its data and runs in a temporary folder.

`open_page("runs", dataset_kind="synthetic")` runs app.py, switches to pages/runs.py and returns the AppTest.
Importing torch, torchvision and captum cold takes 5-11 s here, so the timeout is generous.
"""

from __future__ import annotations

import pathlib

import pytest
from streamlit.testing.v1 import AppTest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))
TIMEOUT = 120


@pytest.fixture
def lab_dirs(tmp_path, monkeypatch):
    data, runs = tmp_path / "data", tmp_path / "runs"
    monkeypatch.setenv("CIFAR_LAB_DATA", str(data))
    monkeypatch.setenv("CIFAR_LAB_RUNS", str(runs))
    monkeypatch.delenv("CIFAR_LAB_PASSCODE", raising=False)
    monkeypatch.chdir(ROOT)
    return data, runs


@pytest.fixture
def open_page(lab_dirs):
    """Open a page with URL query parameters and session state set before the first run.

    Streamlit 1.67's AppTest keeps the entrypoint's elements (our sidebar) only in the tree of the FIRST run:
    later runs re-render them in a browser but not in AppTest's tree. So sidebar state is set up front, and
    sidebar assertions are made on a fresh AppTest's first run.
    """
    def open_(page: str, state: dict | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
        at.query_params.update(query)
        for k, v in (state or {}).items():
            at.session_state[k] = v
        at.run()
        if page != "home":
            at.switch_page(f"pages/{page}.py").run()
        return at
    return open_


def tiny_run(runs_dir, data_dir, seed: int = 0, dataset: str = "synthetic") -> str:
    """A finished run with a checkpoint in the library, trained in this process in seconds (the CLI's recorder +
    the engine), for pages that need a trained model."""
    from core.lessons.presets import preset_config
    from core.runs.recorder import cli_recorder
    from core.train import engine

    small = dataset == "synthetic"
    config = preset_config("cnn", dataset=dataset, subset=200 if small else None, test_subset=100 if small else None,
                           epochs=1, batch_size=50, device="cpu", seed=seed, lr=1e-3,
                           **{"model.widths": (8, 8, 8, 16), "model.fc": 32})
    rec = cli_recorder(config, str(runs_dir), name=f"tiny {dataset} seed {seed}")
    try:
        for event in engine.train(config, should_stop=rec.should_stop, checkpoint_dir=rec.checkpoint_dir,
                                  data_root=data_dir):
            rec.record(event)
    finally:
        rec.close()
    return rec.run_id


def problems(at: AppTest) -> list[str]:
    """Exceptions, and error boxes, shown by a page."""
    return [e.value for e in at.exception] + [e.value for e in at.error]


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))
