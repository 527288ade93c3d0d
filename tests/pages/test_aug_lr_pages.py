"""The augmentation lab and the LR range test pages, driven through AppTest on the synthetic dataset.

Augmentation: the grid is core.data.augment's draw for the page's pictures and seed (captions = describe(i)), the same
seed gives the same picture bytes (media URLs are content hashes), "New sample" moves to the next seed, an
upload that is not a picture gets the core's message, and "your pipeline" queues the CNN with exactly the
page's AugmentConfig. LR finder: nothing is built until the first step, +1 / +10 / reset / a plain rerun move the tab's place
on the shared range test (two students, one model), running to the end shows the lab's recommendation (or why there is none) and fastai's rules on the chart, and
"apply" queues the preset at the recommended LR, the default pick.
A running stand-in row holds the CPU slot, so queued runs stay queued and no trainer process starts.
"""

from __future__ import annotations

import html
import io
import os
import re

import pytest
import torch

from core.config import AugmentConfig
from core.data.loading import load_dataset
from core.lessons.presets import FLIP_CROP, get_preset, preset_config
from core.runs.library import open_library
from core.runs.supervisor import HOST
from core.train.lr_finder import LRFinder
from core.train.lr_recommend import all_suggestions, recommend
from tests.pages.conftest import charts, problems
from ui import finders
from ui.aug_preview import preview

TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def hold_the_cpu_queue(runs_dir) -> None:
    """A live 'terminal' run on the CPU: the one slot is taken, so submitted runs wait in the queue."""
    lib = open_library(runs_dir)
    lib.set_setting("stale_after_s", 3600)
    lib.insert_run(preset_config("mlp", dataset="synthetic"), device="cpu", status="running", started_by="cli",
                   owner="terminal", pid=os.getpid(), host=HOST, name="stand-in")


def png_bytes(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# --- augmentation lab ---------------------------------------------------------------------------------------

def grid(at, samples: int = 7) -> list[tuple[str, list[str]]]:
    """(picture data URI, captions) of each row of the grid: one picture per row (the original and its samples
    side by side) with a caption under each, the original's, then each sample's parameters; the whole row is
    one HTML block (ui.aug_preview.row_html)."""
    rows = []
    for block in (m.value for m in at.markdown if 'class="aug-row"' in m.value):
        for row in block.split('<div class="aug-row"')[1:]:
            (uri,) = re.findall(r'<img src="([^"]+)"', row)
            cells = re.findall(r'<div style="padding:[^"]*">(.*?)</div>', row)
            rows.append((uri, [html.unescape(re.sub(r"</?b>", "", c)) for c in cells]))
    assert all(len(captions) == 1 + samples for _, captions in rows)
    return rows


def test_grid_is_the_training_draw_same_seed_same_bytes_new_sample_next_seed(open_page, synthetic):
    at = open_page("augmentation", **TINY)
    assert problems(at) == []
    rows = grid(at)
    assert len(rows) == 4 and all(len(captions) == 1 + 7 for _, captions in rows)  # 4 pictures: original + 7

    # oracle: the page's default picks (random, pick seed 0) through the preview with seed 0 and flip + crop
    idx = torch.randperm(len(synthetic.train_x), generator=torch.Generator().manual_seed(0))[:4]
    expected = preview(synthetic.train_x[idx], FLIP_CROP, seed=0, samples=7, fill=synthetic.mean)
    for n, (_, captions) in enumerate(rows):
        assert captions[0] == f"original #{int(idx[n])} · {synthetic.classes[int(synthetic.train_y[idx[n]])]}"
        assert captions[1:] == expected.descriptions(n)
    assert any("Grid made in" in c.value for c in at.caption)

    at.run()  # same seed, same widgets: byte-identical pictures
    assert grid(at) == rows
    at.button(key="aug_new").click().run()
    assert at.number_input(key="aug_seed").value == 1
    moved = grid(at)
    assert all(new_url != url for (new_url, _), (url, _) in zip(moved, rows, strict=True))  # new pictures ...
    assert [c[0] for _, c in moved] == [c[0] for _, c in rows]  # ... of the same originals
    seed1 = preview(synthetic.train_x[idx], FLIP_CROP, seed=1, samples=7, fill=synthetic.mean)
    assert [c[1:] for _, c in moved] == [seed1.descriptions(n) for n in range(4)]


def test_uploads_bad_files_get_the_core_message_and_pictures_get_a_row(open_page):
    at = open_page("augmentation", **TINY)
    at.radio(key="aug_source").set_value("upload").run()
    at.file_uploader(key="aug_upload").set_value([("notes.txt", b"not a picture", "text/plain"),
                                                  ("dot.png", png_bytes(1, 1), "image/png"),
                                                  ("red.png", png_bytes(300, 200), "image/png")]).run()
    errors = [e.value for e in at.error]
    assert errors == ["notes.txt is not a picture this lab can read: choose a JPEG, PNG, WebP, BMP or GIF file",
                      "dot.png is only 1×1 pixels; a picture needs at least 8×8"]
    assert not at.exception
    (row,) = grid(at)  # only the good picture, resized to 32×32, and its 7 samples
    assert row[1][0] == "original red.png" and len(row[1]) == 8


def test_your_pipeline_queues_the_cnn_with_the_pages_augmentations(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    hold_the_cpu_queue(runs_dir)
    at = open_page("augmentation", **TINY)
    at.button(key="aug_load:Everything").click().run()
    at.slider(key="aug_erase_size").set_value(5).run()
    at.button(key="aug_mine_start").click().run()
    assert problems(at) == []
    (run,) = [r for r in open_library(runs_dir).list_runs() if r.tags == "augmentation-lab"]
    assert run.status == "queued" and run.preset is None and run.model == "cnn"
    assert run.config.data.augment == AugmentConfig(flip_p=0.5, crop_padding=4, erase_p=0.5, erase_size=5,
                                                    brightness=0.3, contrast=0.3, saturation=0.3)
    assert run.config.model == preset_config("cnn-128").model and run.config.data.subset == 500  # §VI's network


def finished(lib, preset: str | None, acc: float, **config) -> str:
    """A completed run in the library, as if trained (no curves needed for the findings)."""
    cfg = preset_config(preset or "cnn", dataset="synthetic", subset=500, **config)
    return lib.insert_run(cfg, device="cpu", status="completed", started_by="cli", preset=preset,
                          extra={"best_test_acc": acc, "test_acc": acc, "epochs_done": 20, "finished": 1.0})


def test_findings_say_when_the_lab_disagrees_with_the_report_and_why(open_page, lab_dirs):
    lib = open_library(lab_dirs[1])
    finished(lib, "cnn-128", 0.40)
    finished(lib, "cnn-flip", 0.35)  # the report: +5 points; here -5: disagrees
    finished(lib, "cnn-flip-crop", 0.37)  # the report: +3 over flip; here +2: agrees
    mine = finished(lib, None, 0.36, erase_p=0.5)
    lib.annotate(mine, tags="augmentation-lab")
    at = open_page("augmentation", **TINY)
    assert problems(at) == []
    warnings, successes = [w.value for w in at.warning], [x.value for x in at.success]
    flip = ("+ random horizontal flip vs Wider CNN 128/128/128/256: the report +5.0 points, your runs -5.0 points. "
            "Your data disagrees with the report. Unlike the report's runs, on 500 training images, the report on "
            "50,000; on synthetic, not the report's cifar100. " + get_preset("cnn-flip").caveat)
    crop = "+ random crop vs + random horizontal flip: the report +3.0 points, your runs +2.0 points. Same direction"
    assert flip in warnings and any(x.startswith(crop) for x in successes)
    # the takeaway: what these runs say, then the report's claim, labelled
    (said,) = [w for w in warnings if w.startswith("**What these runs say.**")]
    assert "Wider CNN 128/128/128/256 wins: 40.0% vs 37.0% for + random crop" in said
    assert "contradicts the report, where + random crop wins" in said
    assert any(m.value.startswith("**The report's claim:** augmentation is free extra data") for m in at.markdown)
    (yours,) = [w for w in warnings if w.startswith("Your pipeline")]
    assert "36.0% against 40.0%, -4.0 points." in yours and get_preset("cnn-flip-crop").caveat in yours
    assert any("compare the direction of each gain, not the digits" in c.value.lower() for c in at.caption)


# --- LR range test --------------------------------------------------------------------------------------------

def finder(at):
    """This tab's view of the shared range test: the pool's curve up to the tab's cursor."""
    held = at.session_state["lr_finder"]
    return finders.pool().curve(held["key"], held["cursor"])


def chart_frames(chart) -> list:
    """The data frames a vega_lite_chart element carries (Streamlit ships each layer's data as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return [convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]


def set_small(at, **extra) -> None:
    """A test that fits a unit test: batch 16, 20 steps (about 0.3 s per step on one core)."""
    at.select_slider(key="lrf_batch").set_value(16).run()
    at.number_input(key="lrf_steps").set_value(20).run()
    for key, value in extra.items():
        getattr(at, {"lrf_range": "select_slider", "lrf_beta": "slider"}[key])(key=key).set_value(value).run()


def test_step_buttons_reset_and_a_rerun_keep_the_sessions_place_on_a_shared_curve(open_page):
    at = open_page("lr_finder", **TINY)
    set_small(at)
    builds = finders.pool().builds
    assert problems(at) == [] and len(finder(at).points) == 0
    assert finders.pool().builds == builds  # opening the page builds no model: the first step does
    at.button(key="lrf_one").click().run()
    assert len(finder(at).points) == 1 and finders.pool().builds == builds + 1
    at.button(key="lrf_ten").click().run()
    f = finder(at)
    assert len(f.points) == 11 and finders.pool().builds == builds + 1
    (bar,) = at.get("progress")  # +10 shows its progress: the bar stays at its count until the next click
    assert bar.proto.value == 100 and bar.proto.text.startswith("step 11 of 20")
    chart = charts(at)[0]  # (fastai's rules answer from a few points on: then the schedule to train is drawn too)
    assert "loss against the learning rate" in chart.proto.spec
    curve = chart_frames(chart)[0]  # raw and smoothed loss of each step so far
    assert list(curve[curve.series == "smoothed"]["lr"]) == [p.lr for p in f.points]
    assert list(curve[curve.series == "loss of each step"]["loss"]) == [p.loss for p in f.points]
    assert {m.label: m.value for m in at.metric}["Step"] == "11 of 20"
    assert {m.label: m.value for m in at.metric}["Learning rate now"] == f"{f.points[-1].lr:.2e}"
    at.run()  # any rerun (another widget, a refresh of the script) keeps the place
    assert finder(at).points == f.points
    at.button(key="lrf_reset").click().run()
    assert finder(at).points == () and not finder(at).done
    at.button(key="lrf_ten").click().run()  # the same settings again: read from the shared curve, not recomputed
    assert finder(at).points == f.points[:10] and finders.pool().builds == builds + 1

    other = open_page("lr_finder", **TINY)  # a second student with the same settings: one model for both
    set_small(other)
    other.button(key="lrf_ten").click().run()
    assert finder(other).points == f.points[:10] and finders.pool().builds == builds + 1
    at.number_input(key="lrf_steps").set_value(30).run()  # a new setting: a new test, from its start
    assert finder(at).points == () and at.session_state["lr_finder"]["key"][2] == 30


def quadratic_finder() -> LRFinder:
    """A range test with a clear answer - loss 5·(w - y)², plain SGD: fastest at lr 0.1, diverging past 0.2, good
    from 0.005 - over the page's range (1e-5 … 1, 100 steps), to stand in for the page's own test in the pool."""
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)

    def batch(i):
        g = torch.Generator().manual_seed(i)
        return torch.ones(8, 1), 0.1 * torch.randn(8, 1, generator=g)

    return LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.5), lambda out, y: 5.0 * ((out - y) ** 2).mean(),
                    batch, start_lr=1e-5, end_lr=1.0, num_iter=100, beta=0.5)  # the page's settings


def test_run_to_the_end_recommends_and_apply_queues_the_preset_at_that_lr(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    hold_the_cpu_queue(runs_dir)
    at = open_page("lr_finder", **TINY)
    set_small(at, lrf_range=(1e-5, 1.0), lrf_beta=0.5)
    at.button(key="lrf_end").click().run()
    assert problems(at) == []
    f = finder(at)
    assert f.done and f.stop_reason
    assert not finders.pool().is_live(at.session_state["lr_finder"]["key"])  # a finished test holds no model
    assert at.button(key="lrf_one").disabled and at.button(key="lrf_end").disabled
    # 20 steps of a tiny CNN on synthetic data learn too little to tell: no recommendation, and what to change
    rec = recommend(f.lrs, f.smoothed, losses=f.losses, beta=0.5, num_iter=20, stop_reason=f.stop_reason)
    assert rec.lr is None and rec.advice
    assert {m.label: m.value for m in at.metric}["recommended"] == "none yet"
    assert any(rec.reason in md.value for md in at.markdown) and any(rec.advice in md.value for md in at.markdown)

    # The same page on a curve with an answer: the pool already holds the test for 100 steps (a stand-in)
    key = at.session_state["lr_finder"]["key"]
    key100 = (*key[:2], 100, *key[3:])
    finders.pool().advance(key100, quadratic_finder, 100)
    at.number_input(key="lrf_steps").set_value(100).run()
    at.button(key="lrf_end").click().run()
    f = finder(at)
    assert problems(at) == [] and f.done and len(f.points) > 50
    suggestions = all_suggestions(f.lrs, f.smoothed, 100)  # the lab's three and fastai's four
    rec = recommend(f.lrs, f.smoothed, losses=f.losses, beta=0.5, num_iter=100, stop_reason=f.stop_reason)
    assert rec.lr is not None and 0.005 <= rec.lr <= 0.1, rec.reason
    metrics = {m.label: m.value for m in at.metric}
    for name, s in suggestions.items():
        assert metrics[name] == ("no suggestion" if s.lr is None else f"{s.lr:.1e}")
    assert metrics["recommended"] == f"{rec.lr:.1e}" and any(rec.reason in md.value for md in at.markdown)
    usable = {"recommended": rec.lr} | {n: s.lr for n, s in suggestions.items() if s.lr is not None}
    chart, schedule = charts(at)  # the loss against the LR; the queued run's schedule
    rules = next(frame for frame in chart_frames(chart) if "label" in frame)
    # the chart draws the recommendation and the report's LR; every other rule is one click away
    assert dict(zip(rules["name"], rules["lr"], strict=True)) == {"recommended": rec.lr, "report": 1e-4}
    at.toggle(key="lrf_all_rules").set_value(True).run()
    rules = next(frame for frame in chart_frames(charts(at)[0]) if "label" in frame)
    assert dict(zip(rules["name"], rules["lr"], strict=True)) == {**usable, "report": 1e-4}
    assert rules["kind"].tolist().count("recommended") == 1

    assert at.radio(key="lrf_pick").value == "recommended"  # the page's default: the recommendation
    at.number_input(key="lrf_epochs").set_value(1).run()
    at.button(key="lrf_apply").click().run()  # "apply & queue" without touching the pick
    assert problems(at) == []
    lr = float(f"{rec.lr:.2g}")
    (run,) = [r for r in open_library(runs_dir).list_runs() if r.name != "stand-in"]
    assert run.status == "queued" and run.preset == "cnn" and run.epochs == 1
    assert run.config.optim.lr == lr and run.config.optim.schedule == "onecycle" and run.config.batch_size == 16
    curve = chart_frames(charts(at)[1])[0]  # drawn before starting: one-cycle peaking at the LR
    assert curve["lr"].max() == pytest.approx(lr) and curve["lr"].iloc[0] == pytest.approx(lr / 25)
    remembered = at.session_state["lr_finder_suggestion"]
    assert remembered == {"preset": "cnn", "lr": lr}
    at.switch_page("pages/sweeps.py").run()  # its LR scenarios centre on the remembered suggestion
    assert problems(at) == [] and any("the LR finder suggestion" in c.value for c in at.caption)


def test_without_a_dataset_uploads_still_work_and_the_lr_page_offers_the_download(open_page):
    at = open_page("augmentation", device="cpu")  # CIFAR-100, not on disk
    assert problems(at) == [] and at.radio(key="aug_source").options == ["upload"]
    assert any(b.label.startswith("Download CIFAR-100") for b in at.button)
    at.file_uploader(key="aug_upload").set_value(("red.png", png_bytes(40, 40), "image/png")).run()
    assert problems(at) == [] and len(grid(at)) == 1
    at = open_page("lr_finder", device="cpu")
    assert problems(at) == [] and any(b.label.startswith("Download CIFAR-100") for b in at.button)
    assert "lr_finder" not in at.session_state


def test_the_passcode_reserves_queueing_from_both_pages(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl-7731-kite")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")  # AppTest is on loopback: the teacher, unless this
    at = open_page("augmentation", **TINY)
    assert at.button(key="aug_mine_start").disabled and at.button(key="aug:start").disabled
    assert not at.button(key="aug_new").disabled  # previews are for everyone
