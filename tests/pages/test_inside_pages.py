"""The "Inside the network" pages (filters, saliency, where it errs) against oracles computed here from the
same checkpoint: the untrained network when the library is empty, then a tiny run trained in this process -
its weight changes, its top-5, its sanity verdict, its confusion matrix - plus uploads and links."""

from __future__ import annotations

import io
from urllib.parse import parse_qs

import pyarrow as pa
import pytest
import torch

from core.data.loading import load
from core.explain.confusion import confusion_matrix, misclassified, predict_split
from core.explain.features import class_probs, fresh_model, load_run_model, run_checkpoint
from core.explain.sanity import sanity_check
from core.runs.library import open_library
from tests.pages.conftest import charts, problems, tiny_run

TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")
INSIDE = ["filters", "saliency", "mistakes"]




@pytest.fixture
def trained(lab_dirs):
    """(run id, RunModel from its checkpoint, its own test split)."""
    data_dir, runs_dir = lab_dirs
    run_id = tiny_run(runs_dir, data_dir)
    assert open_library(runs_dir).get(run_id).status == "completed"
    rm = load_run_model(run_checkpoint(run_id, runs_dir))
    split = load(rm.config.data, data_dir, seed=rm.config.seed)
    return run_id, rm, split


def chart_rows(chart) -> list[dict]:
    """Every row of every dataset a Streamlit vega-lite chart carries (Arrow IPC on the proto)."""
    rows = []
    for ds in chart.proto.datasets:
        rows += pa.ipc.open_stream(ds.data.data).read_all().to_pylist()
    return rows


def captions(at) -> list[str]:
    """Captions of every st.image, and of st.caption."""
    out = [img.caption for el in at.get("image") for img in el.proto.imgs]
    return out + [c.value for c in at.caption]


def texts(at) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(captions(at))


def chart_with(at, field: str):
    found = [c for c in charts(at) if f'"{field}"' in c.proto.spec]
    assert found, f"no chart with a {field!r} field"
    return found[0]


def png(side: int = 40) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# --- an empty library: the untrained network -------------------------------------------------------------------

@pytest.mark.parametrize("page", INSIDE)
def test_with_no_runs_the_pages_offer_the_untrained_network(open_page, page):
    at = open_page(page, **TINY)
    assert problems(at) == []
    assert any("No run in the library has a checkpoint" in i.value and "python -m core train" in i.value
               for i in at.info)
    assert at.selectbox(key="inside_run").value == "fresh"
    assert at.success, "the takeaway"
    if page == "filters":
        assert any(c.startswith("untrained: 32 filters of 3×3×3") for c in captions(at))  # the base cnn
        assert sum(1 for c in captions(at) if "most active of" in c) == 4  # the base cnn's four conv layers
    if page == "saliency":
        assert sum(1 for c in captions(at) if c.startswith("⏱")) == 5  # every method at CIFAR size
    if page == "mistakes":
        cm = chart_with(at, "pred")
        assert sum(r["count"] for r in chart_rows(cm)) == 500  # the sidebar's 500 test pictures
        assert any(link.proto.label == "Explain" for link in at.get("page_link"))


def test_presenter_mode_hides_the_advanced_controls(open_page):
    for page, keys in (("saliency", ["sal_ig_steps", "sal_occ_window"]), ("filters", ["filters_layer", "filters_top"])):
        normal = open_page(page, **TINY)
        shown = open_page(page, presenter="true", **TINY)
        assert problems(shown) == []
        for key in keys:
            assert key in normal.session_state and key not in shown.session_state, (page, key)
        assert shown.get("image"), page


# --- a trained run ---------------------------------------------------------------------------------------------

def test_filters_show_the_first_layer_and_how_far_training_moved_each_layer(open_page, trained):
    run_id, rm, _ = trained
    at = open_page("filters", **TINY)
    assert problems(at) == []
    assert at.selectbox(key="inside_run").value == run_id  # the newest run with a checkpoint
    caps = captions(at)
    assert "trained: 8 filters of 3×3×3" in caps
    assert "the same filters before training (the run's seed)" in caps and "what training added: trained − before" in caps
    before = fresh_model(rm.config, len(rm.classes))
    from core.models.registry import conv_layers

    expected = {n: float((a.weight - b.weight).detach().norm() / b.weight.detach().norm())
                for (n, a), (_, b) in zip(conv_layers(rm.model), conv_layers(before), strict=True)}
    shown = {r["layer"]: r["change"] for r in chart_rows(chart_with(at, "change"))}
    assert shown.keys() == expected.keys() and all(shown[k] == pytest.approx(v, rel=1e-5) for k, v in expected.items())
    assert sum(1 for c in caps if "most active of" in c) == 4
    assert any(m.value.startswith("**features.conv4 (after ReLU)** · 16 channels of") for m in at.markdown)


def test_saliency_explains_the_linked_picture_with_gradcam_and_runs_the_sanity_check(open_page, trained):
    run_id, rm, split = trained
    at = open_page("saliency", run=run_id, img="7", **TINY)
    assert problems(at) == []
    assert at.number_input(key="inside_img").value == 7  # the link's picture
    true = rm.classes[int(split.test_y[7])]
    assert f"test picture #7 · true class: {true}" in captions(at)
    probs = class_probs(rm.model, split.test_x[7], rm.mean, rm.std)[0]
    top = torch.topk(probs, 5)
    shown = chart_rows(chart_with(at, "prob"))
    assert [r["class"] for r in shown] == [rm.classes[i] for i in top.indices.tolist()]
    assert [r["prob"] for r in shown] == pytest.approx(top.values.tolist(), abs=1e-6)

    at.multiselect(key="sal_methods").set_value(["gradcam"]).run()
    pred, _ = predict_split(rm.model, split.test_x, rm.mean, rm.std)
    [b for b in at.button if b.label == "🎲 A mistake"][0].click().run()
    mistake = at.number_input(key="inside_img").value
    assert pred[mistake] != split.test_y[mistake]
    at.selectbox(key="inside_class").set_value(3).run()  # a class: its first test picture
    assert at.number_input(key="inside_img").value == int(torch.nonzero(split.test_y == 3)[0])
    [b for b in at.button if b.label == "🎲 Random picture"][0].click().run()
    assert split.test_y[at.number_input(key="inside_img").value] == 3
    at.number_input(key="inside_img").set_value(7).run()
    assert problems(at) == []
    assert sum(1 for c in captions(at) if c.startswith("⏱")) == 1
    at.selectbox(key="sal_sanity_method").set_value("gradcam").run()
    [b for b in at.button if b.label == "Run the sanity check"][0].click().run()
    assert problems(at) == []
    expected = sanity_check(rm.model, split.test_x[7], rm.mean, rm.std, "gradcam")
    boxes = [b.value for b in list(at.error) + list(at.success) + list(at.warning)]
    assert any(expected.verdict in b for b in boxes), boxes
    steps = chart_rows(chart_with(at, "rank_corr"))
    assert [r["rank_corr"] for r in steps if "label" in r] == pytest.approx([s.rank_corr for s in expected.steps])


def test_mistakes_confusion_matrix_is_the_runs_own_and_explain_links_to_the_saliency_page(open_page, trained):
    run_id, rm, split = trained
    at = open_page("mistakes", **TINY)
    assert problems(at) == []
    pred, probs = predict_split(rm.model, split.test_x, rm.mean, rm.std)
    cm = confusion_matrix(pred, split.test_y, len(rm.classes))
    rows = chart_rows(chart_with(at, "pred"))
    assert sum(r["count"] for r in rows) == len(split.test_y) == 100
    # wider than a phone: it scrolls sideways inside its own box (ui.layout.scroll_x), never cut off
    (box,) = [b for b in at.main if getattr(b, "proto", None) is not None and hasattr(b.proto, "id")
              and str(b.proto.id).endswith("scroll_x_confusion")]
    assert [c for c in box if getattr(c, "type", "") == "vega_lite_chart" and '"pred"' in c.proto.spec]
    index = {c: i for i, c in enumerate(rm.classes)}
    assert all(cm[index[r["true"]], index[r["pred"]]] == r["count"] for r in rows)
    wrong = int((pred != split.test_y).sum())
    assert {m.label: m.value for m in at.metric}["Mistakes"] == f"{wrong:,}"
    links = [link.proto for link in at.get("page_link") if link.proto.label == "Explain"]
    assert len(links) == min(24, wrong) > 0
    first = int(misclassified(pred, split.test_y, probs)[0])  # the most confident mistake comes first
    query = parse_qs(links[0].query_string)
    assert links[0].page == "pages/saliency.py" or links[0].page.endswith("saliency")
    assert query["run"] == [run_id] and query["img"] == [str(first)] and query["dataset_kind"] == ["synthetic"]

    at.switch_page("pages/saliency.py").run()  # this tab looked at another picture before ...
    at.number_input(key="inside_img").set_value(first + 1).run()
    at.switch_page("pages/mistakes.py").run()
    at.query_params.update({k: v[0] for k, v in query.items()})  # ... then follows the link
    at.switch_page("pages/saliency.py").run()
    assert problems(at) == []
    assert at.number_input(key="inside_img").value == first
    assert at.selectbox(key="inside_run").value == run_id
    assert f"test picture #{first} · true class: {rm.classes[int(split.test_y[first])]}" in captions(at)


def test_the_chosen_model_and_picture_follow_the_student_from_page_to_page(open_page):
    at = open_page("saliency", **TINY)
    at.selectbox(key="inside_fresh").set_value("mlp").run()  # cheap to explain; filters has none to show
    at.number_input(key="inside_img").set_value(42).run()
    assert at.query_params["img"] == "42"  # a link reopens it (no run in it: fresh is all an empty lab has)
    assert "run" not in at.query_params
    for page in ("filters", "runs", "mistakes", "saliency"):  # through a page without the pickers, too
        at.switch_page(f"pages/{page}.py").run()
        assert problems(at) == [], page
        if page != "runs":
            assert at.selectbox(key="inside_fresh").value == "mlp", page
        if page == "filters":
            assert any("has no convolution layers" in i.value for i in at.info)
    assert at.number_input(key="inside_img").value == 42


# --- pictures from outside -------------------------------------------------------------------------------------

def test_an_upload_that_is_not_a_picture_gets_a_clear_message_and_a_picture_gets_a_top5(open_page):
    at = open_page("saliency", **TINY)
    at.radio(key="inside_src").set_value("upload").run()
    at.file_uploader(key="inside_upload").upload("notes.txt", b"not a picture at all", "text/plain")
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "notes.txt is not a picture this lab can read: choose a JPEG, PNG, WebP, BMP or GIF file"]
    at.file_uploader(key="inside_upload").set_value(("dot.png", png(1), "image/png")).run()
    assert [e.value for e in at.error] == ["dot.png is only 1×1 pixels; a picture needs at least 8×8"]
    at.file_uploader(key="inside_upload").set_value(("red.png", png(), "image/png")).run()
    assert problems(at) == []
    assert "your picture: red.png" in captions(at)
    assert {r["kind"] for r in chart_rows(chart_with(at, "prob"))} <= {"top", "other"}  # no truth to compare
    assert at.query_params.get("img") is None  # an upload is not in the link
