"""The class time budget: fit_to_budget against a brute-force oracle with a fake rate, and the buttons' words."""

import dataclasses

import pytest

from core.config import TrainConfig
from core.train.budget import (
    MIN_IMAGES,
    estimator,
    fit_to_budget,
    report_text,
    round_images,
    run_estimate,
    start_label,
    total_text,
)
from core.train.estimate import Estimate, Rate, estimate

RATE = Rate(train_ips=500.0, eval_ips=2000.0, warmup_s=2.0, setup_s=4.0)  # + 3.5 s process start
TRAIN, TEST = 50_000, 10_000


def config(epochs=20, subset=None, test_subset=2000):
    c = TrainConfig(epochs=epochs)
    return dataclasses.replace(c, data=dataclasses.replace(c.data, subset=subset, test_subset=test_subset))


def seconds(c):
    return estimator(RATE, TRAIN, TEST)(c)


def oracle(c, minutes, images):
    """Brute force: the most epochs that fit; at one epoch, the most images (then rounded down) that fit."""
    fit = [e for e in range(1, c.epochs + 1) if seconds(dataclasses.replace(c, epochs=e)) <= minutes * 60]
    if fit:
        return max(fit), images
    ok = [n for n in range(MIN_IMAGES, images + 1, 7) if
          seconds(dataclasses.replace(c, epochs=1, data=dataclasses.replace(c.data, subset=n))) <= minutes * 60]
    return 1, (max(ok) if ok else MIN_IMAGES)


@pytest.mark.parametrize("minutes", [0.2, 0.5, 1, 2, 3, 5, 10, 30, 60])
@pytest.mark.parametrize("epochs,subset", [(20, None), (20, 5000), (3, 2000), (50, 500)])
def test_fit_to_budget_matches_the_oracle(minutes, epochs, subset):
    c = config(epochs, subset)
    images = subset or TRAIN
    out, cut = fit_to_budget(c, seconds, minutes, train_images=images)
    want_epochs, want_images = oracle(c, minutes, images)
    if seconds(c) <= minutes * 60:
        assert cut is None and out is c
        return
    assert cut is not None and out.epochs == want_epochs == cut.epochs_to and cut.epochs_from == epochs
    assert cut.images_from == images and cut.seconds_from == seconds(c) and cut.seconds_to == seconds(out)
    if want_images == images:  # epochs alone were enough: the images are untouched
        assert cut.images_to == images and out.data.subset == subset
    else:
        assert out.data.subset == cut.images_to == round_images(cut.images_to) <= want_images + 7
        assert cut.images_to >= min(want_images, round_images(want_images)) // 2  # rounding to 2 figures only
    assert cut.fits == (seconds(out) <= minutes * 60)
    if cut.fits:
        assert cut.seconds_to <= minutes * 60


def test_no_budget_or_no_rate_cuts_nothing():
    c = config()
    assert fit_to_budget(c, seconds, None) == (c, None)
    assert fit_to_budget(c, seconds, 0) == (c, None)
    assert fit_to_budget(c, lambda _: None, 1) == (c, None)


def test_a_budget_too_small_for_anything_says_so():
    out, cut = fit_to_budget(config(), seconds, 0.05, train_images=TRAIN)  # 3 s: less than start-up
    assert out.epochs == 1 and out.data.subset == MIN_IMAGES and not cut.fits
    assert "over the budget" in cut.text()


def test_the_cut_in_words():
    out, cut = fit_to_budget(config(20, None), seconds, 1, train_images=TRAIN)
    assert cut.text() == f"Cut to 1 epoch and {cut.images_to:,} images to fit 1 minute"
    _, cut = fit_to_budget(config(20, 5000), seconds, 2, train_images=5000)
    assert cut.text().startswith("Cut to ") and "images" not in cut.text() and cut.text().endswith("fit 2 minutes")
    assert report_text(20, 50_000) == "the report trained 20 epochs on 50,000"


def test_round_images():
    assert [round_images(n) for n in (7, 150, 2047, 12_345, 49_999)] == [100, 150, 2000, 12_000, 49_000]


def test_run_estimate_applies_the_subsets():
    c = config(2, 5000, 1000)
    e = run_estimate(c, RATE, TRAIN, TEST)
    assert e == estimate(c, RATE, 5000, 1000) and run_estimate(c, None, TRAIN, TEST) is None
    assert run_estimate(config(2, 90_000, None), RATE, TRAIN, TEST) == estimate(c, RATE, TRAIN, TEST)


def test_the_button_labels():
    assert start_label("▶ Start", Estimate(40, "b"), "this CPU") == "▶ Start (≈ 40 s on this CPU)"
    assert start_label("▶ Start", Estimate(40, "b"), "this CPU", 1) == "▶ Start (≈ 40 s on this CPU)"
    assert start_label("▶ Start", Estimate(18 * 60, "b"), "this CPU", 2) == \
        "▶ Start (≈ 18 min — longer than the class budget)"
    assert start_label("▶ Start", None, "this CPU") == "▶ Start (time: measured on its first run here)"
    assert total_text([Estimate(600, ""), None, Estimate(900, "")], "this CPU") == \
        "≈ 25 min on this CPU + 1 of 3 not timed yet"
    assert total_text([None], "this CPU") == "time: measured on their first runs here"
