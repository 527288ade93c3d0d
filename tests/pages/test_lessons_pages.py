"""The report's last lessons as pages: CNN builder (summary = core.models.builder's, an impossible layer flagged with
Start disabled, code view, a custom run), sweeps (grid size, a sweep queued through the page and charted),
more data (four sizes queued as one sweep) and ensembles (the page's accuracy = core.explain.ensemble's)."""

from __future__ import annotations

import time

import pytest

from core.data.loading import load
from core.explain.ensemble import ensemble_from_checkpoints
from core.models.builder import normalize_spec, spec_from_preset, summarize
from core.runs.library import open_library
from tests.fakes import write_fake_cifar
from tests.pages.conftest import charts, problems, tiny_run

TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")
LESSONS = ["builder", "sweeps", "more_data", "ensembles"]


def wait_for_end(runs_dir, n: int, timeout: float = 120.0) -> list:
    lib = open_library(runs_dir)
    t0 = time.time()
    while time.time() - t0 < timeout:
        runs = lib.list_runs()
        if len(runs) >= n and not any(r.active for r in runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(f"runs still active after {timeout}s: {[(r.name, r.status) for r in lib.list_runs()]}")


def button(at, label: str):
    (b,) = [b for b in at.button if b.label == label or b.label.startswith((label + " (", label + " · "))]
    return b


def texts(at) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


@pytest.mark.slow
@pytest.mark.parametrize("page", LESSONS)
def test_lesson_pages_render_with_no_runs(open_page, page):
    at = open_page(page, **TINY)
    assert problems(at) == [], page
    labelled = "The general lesson:" in texts(at) or "The report's claim:" in texts(at)  # beside the runs' verdict
    assert at.title and (at.success or labelled), f"{page}: title and takeaway"  # page_header ... takeaway


# --- CNN builder ----------------------------------------------------------------------------------------------

def test_builder_summary_is_core_builders_for_the_chosen_preset(open_page):
    at = open_page("builder", **TINY)
    expected = summarize(spec_from_preset("cnn"), num_classes=10)  # synthetic: 10 classes
    params = {m.label: m.value for m in at.metric}
    assert params["Parameters"] == f"{expected.total_params:,}" == "16,860,170"
    assert params["Output"] == "(B, 10)"
    table = at.dataframe[-1].value  # the summary table (the editors come first)
    assert list(table["layer"]) == [r.name for r in expected.rows] + ["total"]
    assert int(table["parameters"].iloc[-1]) == expected.total_params
    assert [int(v) for v in table["parameters"].iloc[:-1]] == [r.params for r in expected.rows]
    assert not button(at, "▶ Start").disabled

    at.selectbox(key="builder_preset").set_value("cnn-bn").run()  # picking a preset loads its layers
    bn = summarize(spec_from_preset("cnn-bn"), num_classes=10)
    assert {m.label: m.value for m in at.metric}["Parameters"] == f"{bn.total_params:,}"
    assert "bn1" in list(at.dataframe[-1].value["layer"])


def test_builder_flags_the_layer_that_breaks_and_disables_start(open_page):
    # six 2x2 pools after a conv: 32 → 16 → 8 → 4 → 2 → 1, and the sixth has nothing left to pool
    spec = {"layers": [{"kind": "conv", "out": 8, "kernel": 3}] + [{"kind": "pool", "size": 2}] * 6, "fc": [64]}
    at = open_page("builder", state={"builder_spec": spec}, **TINY)
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "feature row 7" in error and "cannot run on its 1×1 input" in error
    table = at.dataframe[-1].value
    flagged = table[table["problem"] != ""]
    assert list(flagged["row"]) == ["7"] and "1×1 input" in flagged["problem"].iloc[0]
    assert button(at, "▶ Start").disabled
    assert any("appears once every layer can work" in i.value for i in at.info)  # no code for a broken net


def test_builder_code_view_for_the_network_and_for_any_preset(open_page):
    at = open_page("builder", **TINY)
    mine, preset = (c.value for c in at.code)
    assert "class Net" in mine and "nn.Conv2d" in mine and "NUM_CLASSES = 10" in mine
    at.selectbox(key="builder_code_preset").set_value("mlp").run()
    preset = at.code[1].value
    assert "class Net" in preset and "nn.Linear" in preset and "nn.Conv2d" not in preset


@pytest.mark.slow
def test_builder_start_trains_the_spec_as_a_custom_model(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    spec = {"layers": [{"kind": "conv", "out": 8, "kernel": 3}, {"kind": "bn"}, {"kind": "act", "fn": "gelu"},
                       {"kind": "pool", "mode": "avg", "size": 4}], "fc": [{"units": 32, "dropout": 0.2}]}
    at = open_page("builder", state={"builder_spec": spec}, **TINY)
    at.number_input(key="builder_epochs").set_value(1).run()
    button(at, "▶ Start").click().run()
    assert problems(at) == []
    (run,) = wait_for_end(runs_dir, 1)
    assert run.status == "completed" and run.model == "custom" and run.preset is None
    stored = run.config.model.options  # plain data: the library can rebuild the model from it
    assert [dict(x) for x in stored["layers"]] == normalize_spec(spec)["layers"]
    assert run.params == summarize(spec, num_classes=10).total_params
    at.run()
    assert problems(at) == []
    assert any(m.label == "Final test accuracy" for m in at.metric)  # the live view, once it finished


# --- sweeps ------------------------------------------------------------------------------------------------

def test_sweeps_dry_grid_shows_the_number_of_runs(open_page):
    at = open_page("sweeps", **TINY)
    at.selectbox(key="sweep_key1").set_value("lr").run()
    at.text_input(key="sweep_values1:lr").set_value("1e-4, 1e-3, 1e-2").run()
    at.selectbox(key="sweep_key2").set_value("batch_size").run()
    at.text_input(key="sweep_values2:batch_size").set_value("64, 128").run()
    assert problems(at) == []
    assert "This sweep makes **6 runs**" in texts(at)
    assert "`lr=0.0001, batch_size=64`" in texts(at)
    assert not button(at, "▶ Queue 6 runs").disabled
    at.text_input(key="sweep_values2:batch_size").set_value("64, big").run()
    shown = [e.value.replace("\\", "") for e in at.error]  # shown as written: markdown escapes removed
    assert any("batch_size must be a whole number" in e and "got 'big'" in e for e in shown), shown
    assert button(at, "▶ Queue").disabled
    assert open_library(None).list_runs() == []  # nothing was queued


@pytest.mark.slow
def test_a_sweep_queued_through_the_page_trains_and_is_charted(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    at = open_page("sweeps", **TINY)
    at.number_input(key="sweep_epochs:cnn").set_value(1).run()
    at.selectbox(key="sweep_key1").set_value("lr").run()
    at.text_input(key="sweep_values1:lr").set_value("1e-4, 1e-3").run()
    button(at, "▶ Queue 2 runs").click().run()
    assert problems(at) == []
    runs = open_library(runs_dir).list_runs()
    assert len(runs) == 2 and len({r.sweep_id for r in runs}) == 1 and runs[0].sweep_id.startswith("lr-")
    assert sorted(r.config.optim.lr for r in runs) == [1e-4, 1e-3]
    assert {r.config.epochs for r in runs} == {1} and {r.train_size or 500 for r in runs} == {500}

    runs = wait_for_end(runs_dir, 2)
    assert [r.status for r in runs] == ["completed", "completed"]
    at.run()
    assert problems(at) == []
    vs = [c.proto.spec for c in charts(at) if '"learning rate"' in c.proto.spec and '"log"' in c.proto.spec]
    assert vs, "accuracy against the learning rate, on a log axis"
    assert "Best so far" in texts(at)
    table = at.dataframe[-1].value
    assert sorted(table["status"]) == ["completed", "completed"]


def test_lr_scenarios_use_the_lr_finder_suggestion(open_page):
    at = open_page("sweeps", state={"lr_finder_suggestion": {"preset": "cnn", "lr": 3e-4}}, **TINY)
    assert any("**0.0003** (the LR finder suggestion)" in c.value for c in at.caption)
    assert any("0.03 (×100)" in c.value for c in at.caption)  # Adam: × 100 so the CNN clearly fails
    # a suggestion found for another network is not used for this one
    at = open_page("sweeps", state={"lr_finder_suggestion": {"preset": "mlp", "lr": 3e-4}}, **TINY)
    assert not any("the LR finder suggestion" in c.value for c in at.caption)


# --- more data ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_more_data_queues_four_sizes_as_one_sweep_and_charts_them(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    at = open_page("more_data", **TINY)
    assert "**50**, **125**, **250**, **500** of the 500 training images" in texts(at)
    at.number_input(key="md_epochs:cnn").set_value(1).run()
    button(at, "▶ Queue the four runs").click().run()
    assert problems(at) == []
    runs = wait_for_end(runs_dir, 4)
    assert sorted(r.config.data.subset for r in runs) == [50, 125, 250, 500]
    assert len({r.sweep_id for r in runs}) == 1 and runs[0].sweep_id.startswith("more-data-")
    assert sorted(r.train_size for r in runs) == [50, 120, 250, 500]  # stratified: 12 of each of 10 classes
    at.run()
    assert problems(at) == []
    assert any('"training images (log scale)"' in c.proto.spec and '"log"' in c.proto.spec for c in charts(at))


# --- ensembles ---------------------------------------------------------------------------------------------



@pytest.mark.slow
def test_ensembles_page_shows_core_ensembles_accuracy(open_page, lab_dirs):
    data_dir, runs_dir = lab_dirs
    ids = [tiny_run(runs_dir, data_dir, seed) for seed in (0, 1)]
    lib = open_library(runs_dir)
    assert [lib.get(i).status for i in ids] == ["completed", "completed"]
    first = lib.get(ids[0]).config
    expected = ensemble_from_checkpoints([lib.run_dir(i) / "last.pt" for i in ids],
                                         load(first.data, data_dir, seed=first.seed))

    at = open_page("ensembles", **TINY)
    assert problems(at) == []
    at.multiselect(key="ens_members").set_value(ids).run()
    assert problems(at) == []
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ensemble accuracy"] == f"{expected.accuracy:.1%}"
    assert metrics["Best single member"] == f"{max(expected.members):.1%}"
    assert f"Exact ensemble accuracy: {expected.accuracy:.4f}." in texts(at)
    assert [r for r in at.dataframe[-1].value["test accuracy"]] == [f"{a:.2%}" for a in expected.members]
    assert len([c for c in charts(at) if '"models in the ensemble"' in c.proto.spec]) == 1

    # a member from another dataset: the LabError's message, not a traceback
    write_fake_cifar(data_dir, "cifar10", n_train_per_class=5, n_test_per_class=2, seed=0)
    other = tiny_run(runs_dir, data_dir, 0, dataset="cifar10")
    at.toggle(key="ens_same").set_value(False).run()
    at.multiselect(key="ens_members").set_value([ids[0], other]).run()
    assert not at.exception
    assert any("ensemble members must share a dataset" in e.value or "but the test set is synthetic" in e.value
               for e in at.error)


# --- teacher controls and presenter mode ---------------------------------------------------------------------

def test_passcode_disables_every_start_and_queue_button(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl-7731-kite")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")  # AppTest is on loopback: the teacher, unless this
    for page in LESSONS:
        at = open_page(page, **TINY)
        assert problems(at) == [], page
        starts = [b for b in at.button if b.label.startswith("▶")]
        assert starts and all(b.disabled for b in starts), page


def test_presenter_mode_hides_the_advanced_controls(open_page):
    def settings_expanders(at):
        return [e for e in at.expander if e.label.startswith("Training settings")]

    assert settings_expanders(open_page("builder", **TINY))
    at = open_page("builder", presenter="true", **TINY)
    assert problems(at) == [] and not settings_expanders(at)  # the preset's training settings are used
    at = open_page("sweeps", presenter="true", **TINY)
    assert problems(at) == []
    assert [s.label for s in at.selectbox if s.key == "sweep_key2"] == []  # one swept setting only
    at = open_page("ensembles", presenter="true", **TINY)
    assert problems(at) == [] and [t for t in at.toggle if t.key == "ens_same"] == []


@pytest.mark.parametrize(("page", "keys"), [("filter_width", ["width"]), ("regularization", ["batch-norm", "fc8192",
                                                                                             "dropout"])])
def test_comparison_pages_show_the_measured_class_budget(open_page, page, keys):
    """Beside the runs on screen, each comparison's measured verdict at a class budget (core.lessons.class_budgets)."""
    from core.lessons.class_budgets import BY_KEY, summary

    at = open_page(page)
    assert problems(at) == []
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert "Measured at a class budget" in text
    for key in keys:
        assert summary(BY_KEY[key]) in text
