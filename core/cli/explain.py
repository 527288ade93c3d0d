"""`python -m core explain`: the figure the saliency page would show, as a PNG for slides.

    python -m core explain --run ID --image test:7 --method gradcam --out cat.png
    python -m core explain --checkpoint runs/ID/best.pt --image photo.jpg --method ig --baseline blur --out x.png

--image is test:INDEX (the run's own test split: its dataset, test subset and seed) or a picture file (made
RGB and 32×32 by core.data.images). Methods: the attributions of core/explain/attribution.py, `filters` (first-layer filters,
trained vs. the same run's initial weights), `featuremaps` and `sanity` (the cascading-randomization check).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.errors import ConfigError, LabError

ATTRIBUTIONS = ("saliency", "ig", "smoothgrad", "gradcam", "occlusion")
VIEWS = ("filters", "featuremaps", "sanity")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="write a saliency / filters / feature-map figure of a trained run as PNG")
    src = p.add_argument_group("which model")
    src.add_argument("--run", metavar="ID", help="a run of the library (its best.pt, else last.pt)")
    src.add_argument("--checkpoint", metavar="PATH", help="a checkpoint file instead of --run")
    src.add_argument("--which", choices=["best", "last"], default="best", help="with --run: which checkpoint")
    src.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
    p.add_argument("--image", default="test:0", metavar="test:INDEX|PATH", help="what to explain (default test:0)")
    p.add_argument("--method", default="gradcam", choices=ATTRIBUTIONS + VIEWS)
    p.add_argument("--target", metavar="CLASS", help="class name or index to explain (default: the prediction)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--data-dir", metavar="DIR", help="where datasets live (default $CIFAR_LAB_DATA or ./data)")
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | mps")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of one line")
    o = p.add_argument_group("method options")
    o.add_argument("--layer", metavar="NAME", help="gradcam: the layer; filters: a conv layer's per-channel grid")
    o.add_argument("--steps", type=int, metavar="N", help="ig: integration steps (default 32)")
    o.add_argument("--baseline", choices=["black", "gray", "blur"], help="ig: the starting image (default black)")
    o.add_argument("--samples", type=int, metavar="N", help="smoothgrad: noisy copies (default 16)")
    o.add_argument("--noise", type=float, metavar="X", help="smoothgrad: noise, fraction of the input range")
    o.add_argument("--window", type=int, metavar="N", help="occlusion: window side in pixels (default 8)")
    o.add_argument("--stride", type=int, metavar="N", help="occlusion: window stride in pixels (default 4)")
    o.add_argument("--sanity-method", default="saliency", choices=ATTRIBUTIONS, help="sanity: the method checked")
    o.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the heat map (default 0.5)")
    o.add_argument("--cmap", default="inferno", choices=["inferno", "viridis", "gray"])
    p.set_defaults(func=cmd_explain)


def _method_options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    flags = {"ig": {"steps": "n_steps", "baseline": "baseline"}, "smoothgrad": {"samples": "nt_samples", "noise": "noise"},
             "occlusion": {"window": "window", "stride": "stride"}, "gradcam": {"layer": "layer"}}.get(method, {})
    return {opt: getattr(args, flag) for flag, opt in flags.items() if getattr(args, flag) is not None}


def _resolve_target(text: str | None, classes: tuple[str, ...]) -> int | None:
    if text is None:
        return None
    if text.strip().isdigit() and int(text) < len(classes):
        return int(text)
    lowered = {c.lower(): i for i, c in enumerate(classes)}
    if text.strip().lower() in lowered:
        return lowered[text.strip().lower()]
    shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
    raise ConfigError(f"--target {text!r} is not a class of this run: give a name ({shown}) or an index "
                      f"0..{len(classes) - 1}")


def _load_image(spec: str, rm: Any, data_dir: str | None) -> tuple[Any, str, Any]:
    """(image (3, 32, 32) uint8, its caption, the dataset when one was loaded)."""
    from core.data.images import read_image_file
    from core.data.loading import load, load_dataset  # deferred: see cmd_explain

    if spec.startswith("test:"):
        index_text = spec[5:]
        if not index_text.strip().isdigit():
            raise ConfigError(f"--image test:INDEX needs a whole number, got {spec!r}")
        ds = load(rm.config.data, data_dir, seed=rm.config.seed)
        index = int(index_text)
        if index >= len(ds.test_y):
            raise LabError(f"--image {spec}: the run's test split has {len(ds.test_y)} images (0..{len(ds.test_y) - 1})")
        true = ds.classes[int(ds.test_y[index])]
        return ds.test_x[index], f"test #{index}, true: {true}", ds
    ds = None
    if rm.config.data.dataset == "cifar100":  # only for the superclass names; optional
        try:
            ds = load_dataset("cifar100", data_dir)
        except LabError:
            ds = None
    return read_image_file(spec), spec.replace("\\", "/").rsplit("/", 1)[-1], ds


def cmd_explain(args: argparse.Namespace) -> int:
    if bool(args.run) == bool(args.checkpoint):
        raise ConfigError("give exactly one of --run ID or --checkpoint PATH")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out must name a .png file, got {args.out!r}")

    # deferred, as every command's torch stack: loaded only when the command runs, after its arguments are checked
    from core.explain import figures
    from core.explain.attribution import METHODS, attribute
    from core.explain.features import coarse_map, feature_maps, load_run_model, predict, run_checkpoint
    from core.explain.sanity import sanity_check
    from core.train.setup import resolve_device

    path = args.checkpoint or run_checkpoint(args.run, args.runs_dir, args.which)
    rm = load_run_model(path, resolve_device(args.device))
    image, caption, ds = _load_image(args.image, rm, args.data_dir)
    coarse = coarse_map(ds) if ds is not None and ds.num_classes == len(rm.classes) else None
    target = _resolve_target(args.target, rm.classes)
    top = predict(rm.model, image, rm.mean, rm.std, rm.classes, coarse, k=5)
    lines = ["top-5:"] + [f"{i}. {g.name} {g.prob:.1%}" + (f" ({g.superclass})" if g.superclass else "")
                          for i, g in enumerate(top, start=1)]
    title = f"{rm.config.model.name} on {rm.config.data.dataset}: {caption}"
    summary: dict[str, Any] = {"out": str(args.out), "method": args.method, "checkpoint": str(path),
                               "top5": [[g.name, round(g.prob, 6)] for g in top]}
    method = args.method
    if method in ATTRIBUTIONS:
        a = attribute(rm.model, image, rm.mean, rm.std, method, target, **_method_options(args, method))
        name = rm.classes[a.target]
        fig = figures.explanation_figure(image, a.map, f"{METHODS[method].title}: {name}",
                                         lines + ["", f"explaining {name} (p={a.target_prob:.1%})",
                                                  f"{a.seconds * 1000:.0f} ms"], title, args.alpha, args.cmap)
        summary.update(target=name, target_prob=a.target_prob, seconds=a.seconds)
    elif method == "filters":
        fig = _filters_figure(args, rm, lines, title)
    elif method == "featuremaps":
        fms = feature_maps(rm.model, image, rm.mean, rm.std, [args.layer] if args.layer else None)
        fig = figures.feature_maps_figure(image, [(f"{f.label} {f.shape[0]}x{f.shape[1]}x{f.shape[2]}", f.maps)
                                                  for f in fms], title)
    else:
        sm = args.sanity_method
        r = sanity_check(rm.model, image, rm.mean, rm.std, sm, target, **_method_options(args, sm))
        maps = [("trained" if s.step == 0 else f"+{s.layer.rsplit('.', 1)[-1]}\nrho {s.rank_corr:.2f}", s.map)
                for s in r.steps]
        fig = figures.sanity_figure(image, maps, r.verdict, f"{title} - sanity check of {METHODS[sm].title} "
                                    f"for {rm.classes[r.target]}", args.cmap)
        summary.update(target=rm.classes[r.target], flag=r.flag, verdict=r.verdict,
                       rank_corr=[round(s.rank_corr, 4) for s in r.steps], seconds=r.seconds)
    figures.save_png(fig, args.out)
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        extra = f" for {summary['target']}" if "target" in summary else ""
        sys.stdout.write(f"wrote {args.out} ({method}{extra}; top-1 {top[0].name} {top[0].prob:.1%})\n")
    return 0


def _filters_figure(args: argparse.Namespace, rm: Any, lines: list[str], title: str) -> Any:
    from core.explain import figures
    from core.explain.features import (
        first_layer_filters,
        fresh_model,
        layer_filters,
    )

    before = fresh_model(rm.config, len(rm.classes))
    if args.layer:  # one conv layer: rows = filters (up to 16), columns = input channels (up to 16)
        def grid(model: Any) -> Any:
            w = layer_filters(model, args.layer)[:16, :16]  # (≤16, ≤16, k, k)
            return figures.tile_grid(w.reshape(-1, *w.shape[-2:]), cols=w.shape[1], scale=4)
        grids = [(f"{args.layer} trained", grid(rm.model)), ("before training (same seed)", grid(before))]
    else:
        def grid(model: Any) -> Any:
            return figures.tile_grid(first_layer_filters(model), cols=8, scale=6)
        grids = [("first-layer filters, trained", grid(rm.model)), ("before training (same seed)", grid(before))]
    return figures.filters_figure(grids, lines, title)
