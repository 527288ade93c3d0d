"""Where it errs: the confusion matrix of a run's whole test split (and CIFAR-100's superclass matrix), each
class's accuracy, the pairs of classes most often mixed up, and a gallery of the mistakes - each one a click
away from its saliency maps."""

import streamlit as st

from core.explain.confusion import coarse_confusion, misclassified, rank_mistakes
from ui import pickers
from ui.charts_inside import confusion_chart, grouped_order, most_confused_classes, per_class_chart
from ui.layout import (
    chart_height,
    friendly_errors,
    metric_columns,
    page_header,
    pct,
    presenter,
    scroll_x,
    show_chart,
    takeaway,
    try_this,
)
from ui.pictures import to_hwc_uint8

GALLERY = 24  # mistakes shown at once
COLUMNS = 8

PAGE = "mistakes"  # this page's key: its script's name, for the header and the class question
page_header(
    "Where it errs",
    "Accuracy is one number; the **confusion matrix** shows what hides behind it. Each row is a true class, "
    "each column what the model answered: the diagonal holds the right answers, everything else a mistake. "
    "Mistakes are rarely random - a network that mixes up cats and dogs, or maples and oaks, has learned "
    "something real about what they share.",
    report="the best from-scratch CNN: 60% on CIFAR-100; most of its mistakes stay inside a superclass.", page=PAGE)


def show(source: pickers.Source, split: pickers.TestSplit, pred, probs) -> None:
    classes = source.classes
    C = len(classes)
    coarse = split.coarse
    supers = [coarse.names[coarse.fine_to_coarse[i]] for i in range(C)] if coarse else None
    ranking = rank_mistakes(pred, split.y, classes, supers)
    cm = ranking.cm
    n = len(split.y)
    right = int(cm.trace())

    metrics = [("Test accuracy", pct(right / n if n else None), f"{right:,} of {n:,} test pictures right"),
               ("Mistakes", f"{n - right:,}", "test pictures with a wrong top answer")]
    if coarse is not None:
        ccm = coarse_confusion(pred, split.y, coarse.fine_to_coarse, len(coarse.names))
        metrics.append(("Right superclass", pct(int(ccm.trace()) / n if n else None),
                        "the answer is in the true class's superclass (e.g. oak for maple: both trees)"))
    metrics.append(("Test pictures", f"{n:,}", "the run's own test split (its dataset, test subset and seed)"))
    for col, (label, value, help_text) in zip(metric_columns(len(metrics)), metrics):
        col.metric(label, value, help=help_text)
    if not source.trained:
        st.caption("An untrained network guesses: most of its answers pile up in a few columns, whichever classes "
                   "its random weights happen to favour.")

    st.subheader("The confusion matrix")
    keep = None
    if C > 20:
        top = 25 if presenter() else st.select_slider(
            "Classes shown", [10, 15, 20, 25, 30, 40, 50, 100], value=25, key="mistakes_top",
            help="The classes involved in the most mistakes; 100 shows every class (hover for the numbers).")
        among = None if top >= C else most_confused_classes(cm, top)
        keep = grouped_order(classes, coarse.fine_to_coarse if coarse else None, among)
        shown = f"The {len(keep)} classes involved in the most mistakes" if among is not None else "Every class"
        st.caption(shown + (", sorted by superclass: confusions inside a superclass form blocks along the "
                            "diagonal." if coarse else ", sorted by name.") + " Hover a cell for its count.")
    show_chart(scroll_x("confusion"), confusion_chart(cm, classes, keep=keep,
                                                   title="rows: true class · columns: predicted"), width="content")
    st.caption("Colour = the share of the true class's pictures in that cell: green on the diagonal (right), red "
               "elsewhere (mistakes, on their own scale so that small ones still show).")

    if coarse is not None:
        st.subheader("Superclasses: mistakes between kinds of things")
        st.markdown("CIFAR-100's 100 classes come in 20 superclasses of 5 (trees, flowers, large carnivores, "
                    "vehicles 1, ...). Counted by superclass, many of the mistakes above disappear: the model "
                    "answered a close relative.")
        show_chart(scroll_x("superclasses"), confusion_chart(ccm, coarse.names, cell=30), width="content")

    st.subheader("Accuracy per class")
    show_chart(st, per_class_chart(ranking.per_class, classes, overall=right / n if n else None, superclasses=supers,
                                    height=chart_height(340 if C > 30 else 300)), width="stretch")
    if ranking.hardest:
        st.caption("Hardest: " + ", ".join(f"{c} ({pct(a, 0)})" for c, a in ranking.hardest) +
                   " · easiest: " + ", ".join(f"{c} ({pct(a, 0)})" for c, a in ranking.easiest))

    st.subheader("The pairs it mixes up most")
    pairs = ranking.pairs
    if pairs:
        table = [{"true class": p.true, "answered": p.pred, "pictures": p.count, "of the class": pct(p.fraction),
                  **({"same superclass": f"✓ {p.superclass}" if p.superclass else ""} if coarse else {})}
                 for p in pairs]
        picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun",
                              selection_mode="single-row", key="mistakes_pairs")
        st.caption("Select a row to see those mistakes in the gallery below.")
        rows = picked.selection.rows if picked and picked.selection else []
        if rows and st.session_state.get("_mistakes_pair") != rows[0]:
            p = pairs[rows[0]]
            st.session_state["mistakes_true"], st.session_state["mistakes_pred"] = p.true_index, p.pred_index
        st.session_state["_mistakes_pair"] = rows[0] if rows else None
    else:
        st.caption("No mistakes at all on this test split.")

    st.subheader("The mistakes themselves")
    st.markdown("The test pictures it got wrong, the most confident mistakes first. **Explain** opens one on the "
                "Saliency page: what in the picture made the model say that?")
    c1, c2 = st.columns(2)
    options = [-1] + list(range(C))
    true_cls = c1.selectbox("True class", options, key="mistakes_true",
                            format_func=lambda i: "any" if i < 0 else classes[i])
    pred_cls = c2.selectbox("Answered", options, key="mistakes_pred",
                            format_func=lambda i: "any" if i < 0 else classes[i])
    wrong = misclassified(pred, split.y, probs, limit=GALLERY, true_class=None if true_cls < 0 else true_cls,
                            pred_class=None if pred_cls < 0 else pred_cls)
    if not len(wrong):
        st.info("No mistakes of this kind on the test split.")
    for start in range(0, len(wrong), COLUMNS):
        row = st.columns(COLUMNS)
        for col, idx in zip(row, wrong[start:start + COLUMNS].tolist()):
            p = int(pred[idx])
            col.image(to_hwc_uint8(split.x[idx], 4), width="stretch")
            pickers.explain_link(col, source, idx)
            col.caption(f"said **{classes[p]}** {float(probs[idx, p]):.0%}  \ntrue: {classes[int(split.y[idx])]}")


source = pickers.choose_model()
split = pickers.test_split(source) if source is not None else None
predictions = None
if source is not None and split is not None:
    with friendly_errors("Looking at the test pictures"):  # the model on the test split: a device can fail it
        predictions = pickers.test_predictions(source, split)
if predictions is not None:
    show(source, split, *predictions)  # a bug below is Streamlit's to show, traceback and all

takeaway("A network's mistakes have structure: it confuses the classes that look alike, and on CIFAR-100 most "
         "wrong answers are still the right *kind* of thing. The confusion matrix tells you where more data, "
         "or a better view of the details, would help.")
try_this(["Find the pair your model mixes up most: would you have confused those two at 32×32 pixels?",
          "Open a confident mistake with Explain: does the saliency map show the object or the background?",
          "Compare an early run with the best one (Model picker): do the same pairs stay confused?"])
