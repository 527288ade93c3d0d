"""CNN builder: compose a network from conv / batch-norm / activation / pool / dropout blocks and FC layers,
starting from any CNN preset; read every layer's output shape, parameters and multiply-adds before anything
runs (an impossible layer is flagged and Start stays disabled); start it; and read it as plain PyTorch.

The editor starts from `st.session_state["builder_spec"]` - a core.models.builder spec ({"layers": [...], "fc": [...]}).
Picking a preset (or Reset) writes that preset's spec there; anything else (a test, another page's "open in the
builder") may set it too before the page runs. The edits on top of it live in the two data editors.
"""

import json
import math
import zlib
from dataclasses import replace

import pandas as pd
import streamlit as st

from core.config import ModelConfig, TrainConfig
from core.errors import LabError
from core.lessons.presets import PRESETS, get_preset
from core.models.builder import Summary, normalize_spec, spec_from_preset, summarize
from core.models.codegen import generate
from core.models.layers import ACTIVATIONS, LAYER_OPTIONS, POOL_MODES
from core.runs.library import RunLibrary
from core.runs.records import RunRecord
from ui import charts_lessons, estimates, runlib
from ui.layout import (
    chart_height,
    friendly_errors,
    metric_columns,
    page_header,
    plain,
    show_chart,
    takeaway,
    try_this,
)
from ui.run_panel import STATUS_ICON, describe, live_run, num_classes
from ui.sidebar import LabSettings, current

PAGE = "builder"  # this page's key: its script's name, for the header and the class question

SPEC_KEY = "builder_spec"
KIND_LABELS = {"conv": "conv", "bn": "batch norm", "act": "activation", "pool": "pooling", "gap": "global pool",
               "dropout": "dropout"}
INT_COLUMNS = ("out", "size", "stride", "padding", "groups")
FLOAT_COLUMNS = ("momentum", "p", "eps", "slope")


@st.cache_data(show_spinner=False)
def buildable_presets() -> list[str]:
    """The presets the builder can start from (cnn family and mlp)."""
    out = []
    for name in PRESETS:
        try:
            spec_from_preset(name)
            out.append(name)
        except LabError:
            pass
    return out


def load_preset() -> None:
    """Load the picked preset's spec into the editor (on a pick and on Reset)."""
    st.session_state[SPEC_KEY] = spec_from_preset(st.session_state.get("builder_preset", "cnn"))


def _value(v):
    """A cell as plain Python: NaN/NA → None, 3.0 → 3 (the spec wants whole numbers as ints)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def layers_frame(layers) -> pd.DataFrame:
    """The spec's layers as editor rows: one column per option, blank where it does not apply."""
    rows = []
    for layer in layers:
        layer = layer if isinstance(layer, dict) else {}
        kind = layer.get("kind")
        rows.append({"kind": kind, "out": layer.get("out"),
                     "size": layer.get("kernel") if kind == "conv" else layer.get("size"),
                     "stride": layer.get("stride"), "padding": layer.get("padding"),
                     "activation": layer.get("fn"), "pool": layer.get("mode"), "momentum": layer.get("momentum"),
                     "affine": layer.get("affine"), "p": layer.get("p"), "groups": layer.get("groups"),
                     "bias": layer.get("bias"), "eps": layer.get("eps"), "slope": layer.get("slope")})
    df = pd.DataFrame(rows, columns=["kind", "out", "size", "stride", "padding", "activation", "pool", "momentum",
                                     "affine", "p", "groups", "bias", "eps", "slope"])
    for c in INT_COLUMNS:
        df[c] = pd.array([_value(v) for v in df[c]], dtype="Int64")
    for c in FLOAT_COLUMNS:
        df[c] = pd.array([_value(v) for v in df[c]], dtype="Float64")
    for c in ("affine", "bias"):
        df[c] = pd.array([_value(v) for v in df[c]], dtype="boolean")
    df.index = pd.RangeIndex(1, len(df) + 1)  # row numbers as a student counts them; the summary uses the same
    return df


def layers_from(df: pd.DataFrame) -> list[dict]:
    """Editor rows back to spec layers: only the options of each row's kind; blank = the kind's default."""
    names = {"conv": {"out": "out", "size": "kernel", "stride": "stride", "padding": "padding", "groups": "groups",
                      "bias": "bias"},
             "bn": {"momentum": "momentum", "affine": "affine", "eps": "eps"},
             "act": {"activation": "fn", "slope": "slope"},
             "pool": {"pool": "mode", "size": "size", "stride": "stride"},
             "gap": {"pool": "mode"}, "dropout": {"p": "p"}}
    layers = []
    for row in df.to_dict("records"):
        kind = _value(row.get("kind"))
        layer = {"kind": kind}
        for column, option in names.get(kind, {}).items():
            v = _value(row.get(column))
            if v is not None:
                layer[option] = int(v) if column in INT_COLUMNS and isinstance(v, float) and v.is_integer() else v
        if kind == "conv" and "out" not in layer:
            layer["out"] = None  # the summary asks for it on this layer
        layers.append(layer)
    return layers


def fc_frame(fc) -> pd.DataFrame:
    """The spec's FC layers as editor rows: neurons, dropout after, activation."""
    rows = [{"units": e, "dropout": 0.0, "activation": "relu"} if isinstance(e, int) else
            {"units": e.get("units"), "dropout": e.get("dropout", 0.0), "activation": e.get("act", "relu")}
            for e in fc]
    df = pd.DataFrame(rows, columns=["units", "dropout", "activation"])
    df["units"] = pd.array([_value(v) for v in df["units"]], dtype="Int64")
    df["dropout"] = pd.array([_value(v) for v in df["dropout"]], dtype="Float64")
    df.index = pd.RangeIndex(1, len(df) + 1)
    return df


def fc_from(df: pd.DataFrame) -> list[dict]:
    """FC editor rows back to spec entries: blank dropout = 0, blank activation = relu."""
    out = []
    for row in df.to_dict("records"):
        units, p, act = (_value(row.get(k)) for k in ("units", "dropout", "activation"))
        out.append({"units": int(units) if isinstance(units, float) and units.is_integer() else units,
                    "dropout": 0.0 if p is None else p, "act": act or "relu"})
    return out


def problems_of(summary) -> dict[int, str]:
    """Spec position → its problems (one line each)."""
    out: dict[int, list[str]] = {}
    for e in summary.errors:
        out.setdefault(e.index, []).append(e.message)
    return {i: "; ".join(m) for i, m in out.items()}


def row_label(index: int, layer_rows: list[str], fc_rows: list[str]) -> str:
    """A spec position as the editors number it: '3' (feature row 3) or 'FC 1'."""
    if index < len(layer_rows):
        return layer_rows[index]
    j = index - len(layer_rows)
    return f"FC {fc_rows[j] if j < len(fc_rows) else j + 1}"


def summary_frame(summary, layer_rows: list[str], fc_rows: list[str]) -> pd.DataFrame:
    """The summary as a table: a row per layer numbered as the editors number it, its problem beside it, a total."""
    problems = problems_of(summary)
    shown: set[int] = set()
    rows = []
    for r in summary.rows:
        where = "" if r.index is None else row_label(r.index, layer_rows, fc_rows)
        problem = problems.get(r.index, "") if r.index is not None and r.index not in shown else ""
        if problem:
            shown.add(r.index)
        rows.append({"row": where, "layer": r.name, "kind": r.kind, "details": r.detail, "output": r.shape_label,
                     "parameters": r.params, "multiply-adds": r.macs, "problem": "⚠️ " + problem if problem else ""})
    rows.append({"row": "", "layer": "total", "kind": "", "details": "", "output": "",
                 "parameters": summary.total_params, "multiply-adds": summary.total_macs, "problem": ""})
    df = pd.DataFrame(rows)
    order = ["row", "layer", "problem", "kind", "details", "output", "parameters", "multiply-adds"]
    df = df[[c for c in order if c != "problem" or problems]]  # the message beside the layer it is about
    for c in ("parameters", "multiply-adds"):
        df[c] = pd.array([_value(v) for v in df[c]], dtype="Int64")
    return df


def highlight(row: pd.Series) -> list[str]:
    """The summary table's styling: a flagged layer in red, the total in bold."""
    if row.get("problem"):
        return ["background-color: #ffd9d9; color: #7a0010"] * len(row)
    if row["layer"] == "total":
        return ["font-weight: bold"] * len(row)
    return [""] * len(row)


def pick_preset() -> tuple[str, dict]:
    """The preset to start from and the Reset button; that preset and the spec the editors start from."""
    presets = buildable_presets()
    c1, c2 = st.columns([3, 1])
    preset = c1.selectbox("Start from", presets, key="builder_preset", on_change=load_preset,
                          index=presets.index("cnn") if "cnn" in presets else 0,
                          format_func=lambda n: f"{get_preset(n).title}  (report: {get_preset(n).report_label})")
    c2.button("↺ Reset to this preset", key="builder_reset", on_click=load_preset, width="stretch")
    if SPEC_KEY not in st.session_state:
        load_preset()
    return preset, st.session_state[SPEC_KEY]


def layer_columns() -> dict:
    """The feature-layer editor's columns: short headers and narrow columns, the help says more."""
    kinds = list(LAYER_OPTIONS)
    return {  # the whole table fits a projector
        "kind": st.column_config.SelectboxColumn("layer", options=kinds, format_func=KIND_LABELS.get, default="conv",
                                                 required=True, width=110),
        "out": st.column_config.NumberColumn("out ch.", min_value=1, step=1, width=75,
                                             help="conv: output channels = filters it learns"),
        "size": st.column_config.NumberColumn("kernel", min_value=1, step=1, width=75,
                                              help="conv: kernel size (3 = 3×3); pooling: window size"),
        "stride": st.column_config.NumberColumn("stride", min_value=1, step=1, width=75,
                                                help="conv: default 1; pooling: blank = the window size"),
        "padding": st.column_config.NumberColumn("pad", min_value=0, step=1, width=75,
                                                 help="conv: zero padding; blank = kernel ÷ 2"),
        "activation": st.column_config.SelectboxColumn("activation", options=list(ACTIVATIONS), width=110),
        "pool": st.column_config.SelectboxColumn("pool", options=list(POOL_MODES), width=75, help="max or average"),
        "momentum": st.column_config.NumberColumn("BN mom.", min_value=0.001, max_value=1.0, step=0.01, width=85,
                                                  format="%.3g", help="batch norm: how fast its running averages move"),
        "affine": st.column_config.CheckboxColumn("affine", width=75,
                                                  help="batch norm: learn a scale and shift per channel"),
        "p": st.column_config.NumberColumn("dropout", min_value=0.0, max_value=0.95, step=0.05, width=85,
                                           format="%.2f", help="dropout: probability of zeroing each value"),
        "groups": None, "bias": None, "eps": None, "slope": None,  # kept, not shown
    }


def edit_spec(loaded) -> tuple[dict, list[str], list[str]]:
    """The two editors on the loaded spec; the spec they hold now and their row numbers (features, FC)."""
    # a new spec loaded → fresh editors
    signature = zlib.crc32(json.dumps(loaded, sort_keys=True, default=str).encode())
    st.markdown("**Feature layers** (top to bottom; add a row at the bottom, select rows to delete them; blank = the "
                "layer's default)")
    base_layers = layers_frame(loaded.get("layers", []) if isinstance(loaded, dict) else [])
    edited = st.data_editor(base_layers, key=f"builder_layers:{signature}", num_rows="dynamic", hide_index=False,
                            column_config=layer_columns(), width="stretch", placeholder="",
                            height=35 * (len(base_layers) + 4) + 3)  # all rows, and room for a few more
    st.markdown("**Fully connected layers** (after flatten; the classifier layer is added at the end)")
    fc_edited = st.data_editor(
        fc_frame(loaded.get("fc", []) if isinstance(loaded, dict) else []), key=f"builder_fc:{signature}",
        num_rows="dynamic", hide_index=False, width="content", placeholder="",
        column_config={"units": st.column_config.NumberColumn("neurons", min_value=1, step=1, default=256),
                       "dropout": st.column_config.NumberColumn("dropout after", min_value=0.0, max_value=0.95,
                                                                step=0.05, format="%.2f", default=0.0),
                       "activation": st.column_config.SelectboxColumn("activation", options=list(ACTIVATIONS),
                                                                      default="relu")})
    spec = {"layers": layers_from(edited), "fc": fc_from(fc_edited)}
    st.session_state["builder_current"] = spec  # what the editors hold now (the Start button trains this)
    return spec, [str(i) for i in edited.index], [str(i) for i in fc_edited.index]


def summarize_spec(spec: dict, dataset: str) -> tuple[Summary | None, int | None]:
    """The spec's summary for this dataset's classes, and that number of classes (None where they fail)."""
    summary = n_classes = None
    with friendly_errors("Summarizing the network"):  # an image folder that is not a dataset, a spec that cannot be
        n_classes = num_classes(dataset)
        summary = summarize(spec, num_classes=n_classes)
    return summary, n_classes


def headline(summary: Summary) -> None:
    """Four numbers: parameters, multiply-adds, layers with weights, the output."""
    m1, m2, m3, m4 = metric_columns(4)
    m1.metric("Parameters", f"{summary.total_params:,}")
    m2.metric("Multiply-adds per image", f"{summary.total_macs / 1e6:,.1f}M")
    convs = sum(r.kind == "conv" for r in summary.rows)
    fcs = sum(r.kind in ("fc", "head") for r in summary.rows)
    m3.metric("Layers with weights", f"{convs} conv + {fcs} FC")
    m4.metric("Output", summary.rows[-1].shape_label if summary.ok else "—")


def layer_table(summary: Summary, layer_rows: list[str], fc_rows: list[str]) -> None:
    """Every layer's shape, parameters and multiply-adds (problems flagged), with a parameters chart when it works."""
    table = summary_frame(summary, layer_rows, fc_rows)
    left, right = st.columns([3, 1]) if summary.ok else (st.container(), None)
    left.dataframe(table.style.apply(highlight, axis=1), hide_index=True, width="stretch", placeholder="—",
                   height=35 * (len(table) + 1) + 3,  # every layer visible: no scrolling on a projector
                   column_config={"problem": st.column_config.TextColumn(width="large"),
                                  "parameters": st.column_config.NumberColumn(format="localized"),
                                  "multiply-adds": st.column_config.NumberColumn(format="localized")})
    if right is not None:
        show_chart(right, charts_lessons.params_chart(summary.table(), height=chart_height(24 * len(table))),
                   width="stretch")


def before_it_runs(summary: Summary | None, layer_rows: list[str], fc_rows: list[str]) -> None:
    """The summary section: the headline numbers, each problem by its row, the layer table, how shapes add up."""
    st.subheader("Before it runs: shapes, parameters, multiply-adds")
    if summary is None:
        return
    headline(summary)
    for e in summary.errors:
        label = row_label(e.index, layer_rows, fc_rows)
        where = f"FC row {label[3:]}" if label.startswith("FC ") else f"feature row {label}"
        st.error(f"**{plain(where)} ({plain(e.name)})**: {plain(e.message)}", icon=":material/block:")
    layer_table(summary, layer_rows, fc_rows)
    st.caption("Shapes leave out the batch (B). A conv's output side is ⌊(in + 2·padding − kernel) / stride⌋ + 1; "
               "its parameters are out × in × kernel² + out (biases). Multiply-adds count convs and FC layers only.")


def training_tweaks(preset: str) -> dict:
    """The training settings, from the preset, in a closed expander; the ones changed from it."""
    base = get_preset(preset).config
    tweaks = {}
    with st.expander("Training settings (from the preset)", expanded=False):
        t1, t2, t3, t4 = st.columns(4)
        tweaks["epochs"] = int(t1.number_input("Epochs", 1, 500, base.epochs, key="builder_epochs"))
        tweaks["batch_size"] = int(t2.select_slider("Batch size", [32, 64, 128, 256, 512, 1024], base.batch_size,
                                                    key="builder_batch"))
        tweaks["optimizer"] = t3.selectbox("Optimizer", ["adam", "adamw", "sgd"],
                                           ["adam", "adamw", "sgd"].index(base.optim.name), key="builder_opt")
        tweaks["lr"] = float(t4.number_input("Learning rate", 1e-6, 10.0, base.optim.lr, format="%g",
                                             key="builder_lr"))
    return tweaks


def train_it(preset: str, spec: dict, ok: bool, settings: LabSettings) -> TrainConfig | None:
    """The "Train it" section: settings, the run it makes, a name and Start; that run's config (None: not ready)."""
    st.subheader("Train it")
    tweaks = {} if settings.presenter else training_tweaks(preset)
    config = None
    if ok:
        with friendly_errors("Preparing the run"):
            config = replace(runlib.config_for(preset, tweaks), model=ModelConfig("custom", normalize_spec(spec)))
            st.markdown(describe(config) + f" · on **{settings.dataset_label}**")
    else:
        st.warning("Fix the flagged layer first: Start is disabled until every layer can work.",
                   icon=":material/block:")
    b1, b2 = st.columns([1, 3])
    name = b2.text_input("Run name", "", key="builder_name", placeholder="my CNN", label_visibility="collapsed")
    why = ("Reserved to the teacher (passcode in the sidebar)" if not settings.can_control else
           "Fix the flagged layer first" if config is None else None)
    when = estimates.plan(config) if config is not None else None  # cut to the class time budget, when there is one
    if when is not None and when.cut is not None:
        st.caption(estimates.cut_caption(when, None))
    if b1.button(when.label("▶ Start") if when else "▶ Start", key="builder_start", type="primary",
                 disabled=config is None or not settings.can_control, help=why):
        with friendly_errors("Starting the run"):
            st.session_state["builder_run"] = runlib.start(when.config if when else config, preset=None,
                                                           name=name.strip() or f"builder · from {preset}")
    return config


def pick_shown(lib: RunLibrary, mine: RunRecord, custom: list[RunRecord]) -> RunRecord:
    """With several builder runs, the one to show (this session's by default); remembered for this session."""
    ids = [r.id for r in custom[:12]]
    if mine.id not in ids:
        ids.insert(0, mine.id)
    labels = {r.id: f"{STATUS_ICON.get(r.status, '')} {r.name} ({r.id[:6]})" for r in custom}
    picked = st.selectbox("Showing run", ids, ids.index(mine.id), format_func=lambda i: labels.get(i, i),
                          key="builder_shown")
    mine = lib.find(picked) or mine
    st.session_state["builder_run"] = mine.id
    return mine


def builder_runs(dataset: str) -> None:
    """This session's builder run, else the newest on this dataset, live (a picker when there are several)."""
    lib = runlib.library()
    mine = lib.find(st.session_state["builder_run"]) if st.session_state.get("builder_run") else None
    custom = [r for r in lib.list_runs(dataset=dataset, limit=100) if r.model == "custom"]
    if mine is None and custom:
        mine = next((r for r in custom if r.active), custom[0])  # the newest builder run: what students see
    if mine is None:
        st.caption("No network from the builder has run on this dataset yet.")
        return
    if len(custom) > 1:
        mine = pick_shown(lib, mine, custom)
    live_run(mine.id, "builder")


def the_code(config: TrainConfig | None, preset: str, n_classes: int | None) -> None:
    """The network as plain PyTorch: yours, or any preset's."""
    st.subheader("The code")
    st.markdown("The same network as plain PyTorch - model, data, optimizer and training loop - to paste into a "
                "notebook. Its layer names match the lab's, so a checkpoint from the lab loads into it.")
    tab_mine, tab_preset = st.tabs(["Your network", "Any preset"])
    with tab_mine:
        if config is not None:
            with friendly_errors("Writing the code"):
                st.code(generate(config, n_classes), language="python")
        else:
            st.info("The code appears once every layer can work.")
    with tab_preset:
        other = st.selectbox("Preset", list(PRESETS), index=list(PRESETS).index(preset), key="builder_code_preset",
                             format_func=lambda n: get_preset(n).title)
        if n_classes is None:
            st.info("The code appears once the dataset in the sidebar is one.")
        else:
            with friendly_errors("Writing the code"):
                st.code(generate(runlib.config_for(other), n_classes), language="python")


page_header(
    "CNN builder",
    "Put a network together block by block - **conv** (channels, kernel, stride, padding), **batch norm** "
    "(momentum, affine), an **activation**, **pooling**, **dropout** - then the fully connected layers. The table "
    "below recomputes every layer's output shape, parameters and multiply-adds as you type, *before* anything "
    "runs: a layer that cannot work (its input has shrunk below its kernel, a pool with nothing left to pool) is "
    "flagged on that very row, and Start waits until it is fixed.",
    report="section VIII varies exactly these knobs - kernel size, stride, padding, batch-norm momentum and affine, "
           "dropout, the number of neurons, and the type and number of layers.", page=PAGE)
settings = current()
preset, loaded = pick_preset()
spec, layer_rows, fc_rows = edit_spec(loaded)
summary, n_classes = summarize_spec(spec, settings.dataset)
before_it_runs(summary, layer_rows, fc_rows)
config = train_it(preset, spec, summary is not None and summary.ok, settings)
builder_runs(settings.dataset)
the_code(config, preset, n_classes)
takeaway("Shapes are arithmetic, not magic: each pool or stride-2 conv halves the image, and the first FC layer "
         "pays for every pixel left at flatten - that is where most of a plain CNN's parameters live.")
try_this(["Add a pooling row after the last conv: the first FC layer's parameters drop by 4×.",
          "Set one conv's stride to 2 and delete a pooling row: same output size, different network.",
          "Keep adding pooling rows until the image is 1×1, then one more: the builder flags the row that breaks.",
          "Add batch norm after every conv of the plain CNN and train both: compare with the report's 42%."])
