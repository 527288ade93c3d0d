"""The ready-made predict-then-reveal questions of the comparison pages, and how each one's actual answer is read
from the lab's runs (plain data: a page passes the best test accuracy of each preset it compares).

kind "higher": which of two presets scores higher on the test set (or "about the same", within TIE_POINTS).
kind "gain": how many points the second preset adds over the first, in bins (edges in points).
kind "open": the answer is the page's own result (a sweep's chart), shown once the question is revealed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.errors import LabError

TIE_POINTS = 1.0  # closer than this on the test set is "about the same" (a seed changes ~1 point on small sets)


@dataclass(frozen=True)
class QuestionSpec:
    key: str  # unique per page
    prompt: str
    choices: tuple[str, ...]
    kind: str  # higher | gain | open
    presets: tuple[str, ...] = ()  # the runs whose result answers it (higher, gain)
    edges: tuple[float, ...] = ()  # gain: bin edges in points


def gain_choices(edges: Sequence[float]) -> tuple[str, ...]:
    """(0, 2, 5) -> ('It loses accuracy', '0 to 2 points', '2 to 5 points', 'More than 5 points')."""
    out = ["It loses accuracy" if edges[0] == 0 else f"Less than {edges[0]:g} points"]
    out += [f"{a:g} to {b:g} points" for a, b in zip(edges, edges[1:])]
    out.append(f"More than {edges[-1]:g} points")
    return tuple(out)


def _higher(key: str, a: str, b: str, a_label: str, b_label: str) -> QuestionSpec:
    return QuestionSpec(key, f"Which scores higher on the test set here: the {a_label} or the {b_label}?",
                        (a_label, b_label, f"About the same (within {TIE_POINTS:g} point)"), "higher", (a, b))


def _gain(key: str, prompt: str, a: str, b: str, edges: tuple[float, ...]) -> QuestionSpec:
    return QuestionSpec(key, prompt, gain_choices(edges), "gain", (a, b), edges)


BANK: dict[str, tuple[QuestionSpec, ...]] = {
    "mlp_vs_cnn": (
        _higher("higher", "mlp", "cnn", "MLP", "CNN"),
        _gain("gain", "How many test-accuracy points does the CNN add over the MLP?", "mlp", "cnn", (0, 2, 5)),
    ),
    "filter_width": (
        _gain("gain", "How many points does the widest CNN (512 filters) add over the base CNN (32)?",
              "cnn", "cnn-512", (0, 3, 8)),
        _higher("higher", "cnn-128", "cnn-256", "128-filter CNN", "256-filter CNN"),
    ),
    "regularization": (
        _gain("gain", "How many points does batch norm add to the CNN?", "cnn", "cnn-bn", (0, 5, 10)),
        _higher("higher", "cnn-bn", "cnn-bn-dropout", "batch-norm CNN", "batch-norm CNN with dropout"),
    ),
    "augmentation": (
        _gain("gain", "How many points does the random crop add on top of the flip?", "cnn-flip", "cnn-flip-crop",
              (0, 2, 5)),
        _gain("flip", "How many points does the random flip add to the plain CNN?", "cnn", "cnn-flip", (0, 2, 5)),
    ),
    "transfer": (
        _gain("gain", "How many points does fine-tuning an ImageNet ResNet18 add over the same ResNet18 from "
                      "scratch?", "resnet18-scratch", "resnet18-pretrained", (0, 10, 30)),
    ),
    "sweeps": (
        QuestionSpec("lr", "Three runs differ only in the learning rate (too low, good, too high). Which ends with "
                           "the best test accuracy?", ("Too low", "Good", "Too high", "All about the same"), "open"),
    ),
    "more_data": (
        QuestionSpec("double", "Doubling the training images: what happens to test accuracy?",
                     ("It drops", "About the same", "A little higher (under 3 points)", "Clearly higher (3+ points)"),
                     "open"),
    ),
}


def questions_for(page: str) -> tuple[QuestionSpec, ...]:
    return BANK.get(page, ())


def spec(page: str, key: str) -> QuestionSpec:
    for q in questions_for(page):
        if q.key == key:
            return q
    raise LabError(f"no question {key!r} on page {page!r}: pick one of "
                   f"{', '.join(q.key for q in questions_for(page)) or 'none (this page has no questions)'}")


def actual_answer(q: QuestionSpec, best_acc: Mapping[str, float | None]) -> str | None:
    """The choice the lab's runs support, from each preset's best test accuracy (fractions); None while a
    compared preset has no result yet, or for an "open" question (the page's chart is the answer)."""
    if q.kind == "open":
        return None
    accs = [best_acc.get(p) for p in q.presets]
    if any(a is None for a in accs):
        return None
    a, b = accs
    points = (b - a) * 100
    if q.kind == "higher":
        if abs(points) < TIE_POINTS:
            return q.choices[2]
        return q.choices[1] if points > 0 else q.choices[0]
    if points < q.edges[0]:
        return q.choices[0]
    for i, hi in enumerate(q.edges[1:]):
        if points < hi:
            return q.choices[i + 1]
    return q.choices[-1]
