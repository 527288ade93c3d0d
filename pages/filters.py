"""Filters & feature maps: what a trained network's convolutions look for (its filters, against the same
network's starting weights) and what each layer sees in one chosen picture (its feature maps)."""

import streamlit as st
import torch

from core.explain.features import feature_layers, feature_maps, first_layer_filters, scale_per_filter
from core.explain.figures import tile_grid
from core.models.registry import conv_layers
from ui import pickers
from ui.charts_inside import weight_change_chart
from ui.layout import friendly_errors, page_header, presenter, show_chart, takeaway, try_this
from ui.pickers import Source

PAGE = "filters"  # this page's key: its script's name, for the header and the class question


def weight(model, name: str) -> torch.Tensor:
    """The weights of the convolution `name` of `model`."""
    return dict(conv_layers(model))[name].weight.detach()


def rgb_grid(tiles: torch.Tensor):
    """(out, 3, k, k) in [0, 1] -> one picture, tiles about 40 px."""
    k = tiles.shape[-1]
    return tile_grid(tiles, cols=8 if len(tiles) <= 32 else 16, pad=2, scale=max(4, 40 // k))


def grey_grid(w: torch.Tensor, n: int = 16):
    """A deeper layer (out, in, k, k): rows = its first n filters, columns = their first n input channels."""
    w = w[:n, :n]
    k = w.shape[-1]
    return tile_grid(scale_per_filter(w).reshape(-1, k, k), cols=w.shape[1], pad=1, scale=max(3, 20 // k),
                     cmap="gray")


def first_layer(source: Source) -> bool:
    """The first convolution's filters as colour tiles (beside the untrained ones, if asked); whether to compare."""
    st.subheader("What the first layer looks for")
    st.markdown("Each tile is one filter of the first convolution: its weights on the red, green and blue "
                "channels shown as a colour patch, stretched to full brightness on its own. Trained filters "
                "become **edge and colour detectors** - a dark-to-light stripe, a green blob; untrained ones "
                "are salt-and-pepper noise.")
    compare = False
    if source.trained:
        compare = st.toggle("Compare with the same network before training", value=True, key="filters_before",
                            help="The weights this run started from: the same architecture, the run's seed.")
    with friendly_errors("Drawing the filters"):
        first = conv_layers(source.model)[0][0] if conv_layers(source.model) else None
        trained_filters = first_layer_filters(source.model)  # (out, 3, k, k) in [0, 1]
        out, _, k, _ = trained_filters.shape
        what = f"{out} filters of {k}×{k}×3"
        cols = st.columns(3 if compare else 1)
        cols[0].image(rgb_grid(trained_filters), width="content",
                      caption=f"{'trained' if source.trained else 'untrained'}: {what}")
        if compare:
            before = pickers.before_training(source)
            cols[1].image(rgb_grid(first_layer_filters(before)), width="content",
                          caption="the same filters before training (the run's seed)")
            cols[2].image(rgb_grid(scale_per_filter(weight(source.model, first) - weight(before, first))),
                          width="content", caption="what training added: trained − before")
            st.caption("Small first layers move little in training (see the bars below), so trained and untrained "
                       "tiles can look alike: the **change** shows what was learned - smooth colour ramps, light-"
                       "dark edges, colour blobs.")
        if not source.trained:
            st.caption("This network is untrained: these are its random starting weights. Pick a trained run "
                       "above to see what training makes of them.")
    return compare


def weight_changes(source: Source, convs: list[str]) -> None:
    """A bar per layer (about 12 at most): how far training moved its weights from the starting ones."""
    with friendly_errors("Comparing the weights"):
        before = pickers.before_training(source)
        rows = []
        for name in convs:
            w0 = weight(before, name)
            rows.append({"layer": name, "change": float((weight(source.model, name) - w0).norm() /
                                                        w0.norm().clamp(min=1e-12))})
        if len(rows) > 12:  # ResNets, MobileNet: about 12 layers, evenly spaced, the last included
            step = -(-len(rows) // 12)
            rows = rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else [])
        st.markdown("**How far training moved each layer's weights** (the distance from the starting "
                    "weights, relative to their size):")
        show_chart(st, weight_change_chart(rows), width="stretch")


def deeper_layers(source: Source, convs: list[str], compare: bool) -> None:
    """One deeper layer's filters as grey tiles (its first 16 × 16), beside the untrained ones if comparing."""
    st.subheader("Deeper layers")
    st.markdown("A deeper filter does not look at colours but at the previous layer's feature maps: one "
                "small grey k×k tile per input channel (white = its strongest positive weight, black = its "
                "most negative). Each **row** is one filter, each **column** the input channel it reads.")
    layer = convs[1]
    if not presenter():
        layer = st.selectbox("Layer", convs[1:], key="filters_layer",
                             help="Every convolution of the network, in the order the picture flows through.")
    with friendly_errors("Drawing the layer's filters"):
        w = weight(source.model, layer)
        cols = st.columns(3 if compare else 1)
        cols[0].image(grey_grid(w), width="content",
                      caption=f"{layer}: {w.shape[0]} filters × {w.shape[1]} input channels of "
                              f"{w.shape[-1]}×{w.shape[-1]} (the first 16 × 16)")
        if compare:
            w0 = weight(pickers.before_training(source), layer)
            cols[1].image(grey_grid(w0), width="content", caption="the same before training")
            cols[2].image(grey_grid(w - w0), width="content", caption="what training added")


def map_options() -> tuple[int, str]:
    """How many channels per layer, and how their brightness is scaled (the defaults in presenter mode)."""
    if presenter():
        return 16, "layer"
    c1, c2 = st.columns(2)
    top = c1.select_slider("Channels shown per layer", [8, 16, 32, 64], value=16, key="filters_top")
    scale_mode = c2.radio("Brightness", ["layer", "channel"], key="filters_scale", horizontal=True,
                          format_func={"layer": "comparable across the layer",
                                       "channel": "each channel stretched on its own"}.get)
    return top, scale_mode


def feature_map_grids(source: Source, image: torch.Tensor, top: int, scale_mode: str) -> None:
    """The feature maps of up to 10 layers (8 evenly spaced when there are more), two grids to a row."""
    with friendly_errors("Computing the feature maps"):
        layers = [n for n, _ in feature_layers(source.model)]
        if len(layers) > 10:  # MobileNetV2 has 52 convolutions: show 8 along the way, first and last included
            step = (len(layers) - 1) / 7
            layers = [layers[round(i * step)] for i in range(8)]
        maps = feature_maps(source.model, image, source.mean, source.std, layers, top=top, scale=scale_mode)
        cols = st.columns(2)
        for i, fm in enumerate(maps):
            side = fm.maps.shape[-1]
            grid = tile_grid(fm.maps, cols=8, pad=2, scale=max(1, 64 // side), cmap="viridis")
            c, h, w = fm.shape
            col = cols[i % 2]
            col.markdown(f"**{fm.label}** · {c} channels of {h}×{w}")
            col.image(grid, width="content",
                      caption=f"the {len(fm.channels)} most active of {c} channels, strongest first")
        if len(feature_layers(source.model)) > len(layers):
            st.caption(f"{len(layers)} of the network's {len(feature_layers(source.model))} layers shown, "
                       "evenly spaced from the first to the last.")


def what_each_layer_sees(source: Source) -> None:
    """A picture, the model's prediction for it, and what every layer of the model makes of it."""
    st.subheader("Feature maps: what each layer sees in your picture")
    st.markdown("Pick a picture and follow it through the network. Each grid shows one layer's output: one small "
                "map per channel (the channels with the highest mean activation, strongest first; bright = "
                "strong response). Early layers still look like the picture - edges and colours; deeper ones "
                "are smaller and more abstract: *where* something the network cares about is, not what it "
                "looks like.")
    split = pickers.test_split(source)
    picked = pickers.choose_image(source, split)
    if picked is None:
        return
    left, right = st.columns([1, 2])
    pickers.show_picture(picked, left)
    with friendly_errors("Predicting"):
        pickers.show_prediction(source, picked, split, right)
    top, scale_mode = map_options()
    feature_map_grids(source, picked.image, top, scale_mode)


page_header(
    "Filters & feature maps",
    "A convolution layer is a stack of small **filters**: little k×k patches of weights slid over the picture. "
    "Where the picture looks like a filter, the filter's output - its **feature map** - lights up. Training "
    "shapes the filters; before training they are random noise. Here are the filters of any trained run, next "
    "to the very weights the same run started from, and what every layer sees in a picture you choose.", page=PAGE)
source = pickers.choose_model()
if source is not None and not conv_layers(source.model):
    st.info(f"{source.label} has no convolution layers - an MLP looks at every pixel with its own weight - so it "
            "has no filters or feature maps to show. Pick a convolutional network.", icon=":material/info:")
elif source is not None:
    compare = first_layer(source)
    convs = [name for name, _ in conv_layers(source.model)]
    if compare and convs:
        weight_changes(source, convs)
    if len(convs) > 1:
        deeper_layers(source, convs, compare)
    st.divider()
    what_each_layer_sees(source)
takeaway("A trained network's first layer rediscovers edge and colour detectors - much like the first stage of "
         "our own visual system - while its deeper layers answer *where* the things it has learned to look for "
         "are. Before training, the same filters are noise.")
try_this(["Compare a trained run's first-layer filters with the untrained network: which tiles look like edges?",
          "Pick a picture the model gets wrong (🎲 A mistake): do the deep feature maps still light up on the "
          "object, or on the background?",
          "Choose the ImageNet ResNet18 run, if the library has one: its 7×7 first-layer filters are the classic "
          "Gabor-like stripes and colour blobs."])
