"""Takeaways from the runs on screen, against hand-made run records whose verdict is known."""

import math

import pytest

from core.config import AugmentConfig
from core.lessons.presets import get_preset, preset_config
from core.lessons.takeaways import RunFacts, compare, facts_from_run, flags_by_label, intended_of, noise_of
from core.runs.records import EpochRow, RunRecord

CIFAR10 = "folder:/work/cifar10"


def facts(label, best, *, train=None, test=None, report=None, epochs="5", images="5,000", aug="none",
          design_aug="none", design_epochs="20", test_size=10_000, status="completed", caveat=""):
    setup = {"dataset": CIFAR10, "images": images, "epochs": epochs, "augmentation": aug, "optimizer": "adam",
             "lr": "0.0001", "batch": "256"}
    intended = {**setup, "dataset": "cifar100", "images": "50,000", "epochs": design_epochs,
                "augmentation": design_aug}
    return RunFacts(label, best, train_acc=train, test_acc=best if test is None else test, status=status,
                    test_size=test_size, report_acc=report, setup=setup, intended=intended, caveat=caveat)


def test_mlp_beats_cnn_on_a_laptop_budget_contradicts_the_report_and_says_why():
    # the measurement: 5,000 CIFAR-10 images, 5 epochs, Adam 1e-4 -> MLP 43.5%, CNN 40.3%
    v = compare([facts("MLP", 0.435, train=0.80, report=0.26),
                 facts("CNN", 0.403, train=0.46, report=0.30, caveat="The CNN learns more slowly at first.")])
    assert v.winner == "MLP" and v.runner_up == "CNN"
    assert v.margin == pytest.approx(0.032)
    assert not v.gap_is_noise and v.fair and v.mismatched == ()
    assert dict(v.gaps) == pytest.approx({"MLP": 0.365, "CNN": 0.057})
    assert v.report_winner == "CNN" and v.agrees_with_report is False
    for part in ("5 epochs, the report 20", "5,000 training images, the report on 50,000", "not the report's cifar100",
                 "The CNN learns more slowly at first."):
        assert part in v.why
    assert "43.5% vs 40.3%" in v.text and "+3.2 points" in v.text and "contradicts the report" in v.text
    assert "MLP memorizes most" in v.text


def test_same_winner_as_the_report_agrees():
    v = compare([facts("MLP", 0.30, report=0.26), facts("CNN", 0.40, report=0.30)])
    assert v.winner == "CNN" and v.agrees_with_report is True and v.why == ""
    assert "Same winner as the report (CNN)" in v.text


def test_margin_under_the_noise_of_the_test_set_is_too_close_to_call():
    # 1,000 test images at ~40%: 2 * sqrt(2 * 0.4 * 0.6 / 1000) = 4.4 points of noise
    a, b = facts("A", 0.41, report=0.31, test_size=1000), facts("B", 0.39, report=0.30, test_size=1000)
    assert noise_of(a, b) == pytest.approx(2 * math.sqrt(0.41 * 0.59 / 1000 + 0.39 * 0.61 / 1000))
    v = compare([a, b])
    assert v.gap_is_noise and v.agrees_with_report is None and "Too close to call" in v.text
    # the same margin on 10,000 images each is real (noise 1.4 points)
    v = compare([facts("A", 0.41, report=0.30), facts("B", 0.39, report=0.31)])
    assert not v.gap_is_noise and v.agrees_with_report is False


def test_noise_never_below_one_point():
    assert noise_of(facts("A", 0.99, test_size=10**7), facts("B", 0.98, test_size=10**7)) == pytest.approx(0.01)
    assert noise_of(facts("A", 0.5, test_size=None), facts("B", 0.4)) == pytest.approx(0.01)


def test_different_epochs_are_flagged_and_qualify_the_verdict():
    v = compare([facts("MLP", 0.395, epochs="5", report=0.26), facts("CNN", 0.303, epochs="3", report=0.30)])
    assert [m.field for m in v.mismatched] == ["epochs"]
    assert v.mismatched[0].values == (("MLP", "5"), ("CNN", "3"))
    assert flags_by_label(v) == {"MLP": "⚠ epochs 5", "CNN": "⚠ epochs 3"}
    assert "Not a like-for-like comparison - epochs: MLP 5, CNN 3" in v.text


def test_augmentation_that_differs_by_design_is_not_flagged_but_a_missing_one_is():
    plain = facts("CNN", 0.40)
    flip = facts("+ flip", 0.38, aug="flip 0.5", design_aug="flip 0.5")
    assert compare([plain, flip]).mismatched == ()
    flip_lost = facts("+ flip", 0.38, aug="none", design_aug="flip 0.5")  # tweaked off: both runs plain
    assert [m.field for m in compare([plain, flip_lost]).mismatched] == ["augmentation"]
    # different subsets, and a dataset switched between runs
    other = RunFacts("B", 0.3, setup={**plain.setup, "images": "2,000", "dataset": "synthetic"},
                     intended=plain.intended, test_size=10_000)
    assert [m.field for m in compare([plain, other]).mismatched] == ["dataset", "images"]


def test_unfinished_runs_are_named_and_single_or_no_results_say_so():
    v = compare([facts("A", 0.4), facts("B", 0.3, status="running")])
    assert v.unfinished == ("B",) and "Not finished: B" in v.text
    assert compare([facts("A", 0.4), facts("B", None)]).winner == "A"
    assert "Only A has a result" in compare([facts("A", 0.4)]).text
    none = compare([facts("A", None)])
    assert none.winner is None and none.text == "No run has a result yet."


def test_more_than_two_runs_are_ordered():
    v = compare([facts("w32", 0.40, report=0.30), facts("w128", 0.45, report=0.31), facts("w512", 0.42, report=0.36)])
    assert v.winner == "w128" and v.runner_up == "w512" and v.report_winner == "w512"
    assert "Order: w128 45.0% > w512 42.0% > w32 40.0%" in v.text and v.agrees_with_report is False


def _record(preset: str, *, epochs_done: int, train_size: int, best: float, **overrides) -> RunRecord:
    cfg = preset_config(preset, dataset=CIFAR10, subset=train_size, **overrides)
    values = {f: None for f in RunRecord.__dataclass_fields__}
    values.update(id="r1", name=preset, preset=preset, config=cfg, dataset=CIFAR10, model=cfg.model.name,
                  device="cpu", status="completed", reason="", created=0.0, started_by="app", owner="worker",
                  train_size=train_size, test_size=10_000, epochs_done=epochs_done, best_test_acc=best,
                  test_acc=best, seconds=1.0, per_class_acc=(), messages="", stop_requested=False,
                  resume_requested=False, download=False)
    return RunRecord(**values)


def test_facts_from_a_run_record_and_its_curves():
    run = _record("cnn-flip", epochs_done=3, train_size=2000, best=0.31, epochs=3)
    rows = [EpochRow(e, 1.0, 0.2 + e / 10, 1.0, 0.3, 1e-4, 1.0, 100.0) for e in (1, 2, 3)]
    f = facts_from_run(run, rows, label="flip", preset=get_preset("cnn-flip"))
    assert f.train_acc == pytest.approx(0.5) and f.test_acc == pytest.approx(0.3)
    assert f.setup["epochs"] == "3" and f.setup["images"] == "2,000" and f.setup["augmentation"] == "flip 0.5"
    assert f.intended == intended_of(get_preset("cnn-flip")) and f.intended["epochs"] == "20"
    assert f.report_acc == pytest.approx(0.36) and f.caveat == get_preset("cnn-flip").caveat
    as_dicts = facts_from_run(run, [r.to_dict() for r in rows], label="flip", preset=None)
    assert as_dicts.train_acc == pytest.approx(0.5) and as_dicts.report_acc is None
    assert as_dicts.intended["augmentation"] == AugmentConfig(flip_p=0.5).describe()


def test_report_card_findings_say_why_and_flag_unlike_budgets():
    from core.lessons.takeaways import card_findings

    caveat = get_preset("cnn-flip").caveat
    found = {f.preset: f for f in card_findings({
        "cnn-128": facts("CNN 128", 0.40, epochs="5"),
        "cnn-flip": facts("+ flip", 0.35, epochs="3", aug="flip 0.5", design_aug="flip 0.5", caveat=caveat),
        "mlp": facts("MLP", 0.30), "cnn": facts("CNN", 0.36)})}
    flip = found["cnn-flip"]
    assert flip.verdict == "disagrees" and flip.baseline == "cnn-128"
    assert "3 / 5 epochs, the report 20" in flip.message and caveat in flip.message
    assert "Not a like-for-like comparison - epochs: CNN 128 5, + flip 3" in flip.message
    assert found["cnn"].verdict == "agrees" and "like-for-like" not in found["cnn"].message


def test_pickers_open_on_the_best_completed_run_of_the_dataset_not_the_newest():
    from core.runs.records import default_run

    def rec(i, status, acc, dataset=CIFAR10):
        return SimpleRun(id=i, status=status, best_test_acc=acc, dataset=dataset)

    newest_first = [rec("new", "completed", 0.17), rec("live", "running", 0.35), rec("best", "completed", 0.30),
                    rec("other", "completed", 0.90, dataset="synthetic"), rec("old", "stopped", 0.40)]
    assert default_run(newest_first, CIFAR10).id == "best"
    assert default_run(newest_first, "synthetic").id == "other"
    assert default_run(newest_first, "cifar100").id == "other"  # none here: the best completed anywhere
    assert default_run([rec("a", "failed", None), rec("b", "stopped", 0.2)], CIFAR10).id == "a"  # none completed
    assert default_run([], CIFAR10) is None


class SimpleRun:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_a_sweeps_own_variable_is_not_flagged_but_another_difference_is():
    low = facts("lr=1e-5", 0.20)
    high = RunFacts("lr=1e-3", 0.40, setup={**low.setup, "lr": "0.001"}, intended={**low.intended, "lr": "0.0001"},
                    test_size=10_000)
    low2 = RunFacts("lr=1e-5", 0.20, setup={**low.setup, "lr": "1e-05"}, intended={**low.intended, "lr": "0.0001"},
                    test_size=10_000)
    assert [m.field for m in compare([low2, high]).mismatched] == ["lr"]  # the preset says 1e-4 for both
    assert compare([low2, high], by_design=["lr"]).mismatched == ()  # a sweep over lr varies it on purpose
    shorter = RunFacts("lr=1e-3", 0.40, setup={**high.setup, "epochs": "2"}, intended=high.intended, test_size=10_000)
    assert [m.field for m in compare([low2, shorter], by_design=["lr"]).mismatched] == ["epochs"]


def test_ensemble_verdicts_against_the_general_lesson():
    from core.lessons.takeaways import ensemble_verdict

    up = ensemble_verdict([("a", 0.40), ("b", 0.41), ("c", 0.39)], 0.45, 10_000)
    assert up.helps is True and up.gain == pytest.approx(0.04) and "+4.0 points, beyond" in up.text
    flat = ensemble_verdict([("a", 0.400), ("b", 0.401)], 0.402, 10_000)
    assert flat.helps is None and "No clear gain" in flat.text and "so alike" in flat.text
    down = ensemble_verdict([("good", 0.50), ("weak", 0.20)], 0.40, 10_000, member_epochs=[20, 1])
    assert down.helps is False and "contradicts the general lesson" in down.text
    assert "weak (20.0%) is 30 points weaker" in down.text and "trained 1 / 20 epochs" in down.text


def test_crossover_reads_where_the_second_curve_overtakes_the_first():
    from core.lessons.budgets import MEASURED, crossover

    # a fast learner that plateaus (the MLP) and a slow one that keeps climbing (the CNN)
    c = crossover([0.40, 0.44, 0.42, 0.42, 0.41], [0.30, 0.40, 0.445, 0.47, 0.50], test_images=10_000)
    assert c.epoch == 3 and c.clear_epoch == 4  # +0.5 at 3 is noise (±1.4); +3.0 at 4 is not
    assert c.first_best == pytest.approx(0.44) and c.first_best_epoch == 2 and c.second_at_end == pytest.approx(0.50)
    never = crossover([0.5, 0.5], [0.3, 0.4], 10_000)
    assert never.epoch is None and never.clear_epoch is None
    m = MEASURED[("mlp", "cnn")]
    assert len(m.first_test) == len(m.first_train) and len(m.second_test) == len(m.second_train)
    assert crossover(m.first_test, m.second_test, m.test_images).epoch is not None  # the report's order appears


def test_data_size_verdicts():
    from core.lessons.takeaways import data_size_verdict

    up = data_size_verdict([{"value": 500, "test_acc": 0.25, "gap": 0.30}, {"value": 5000, "test_acc": 0.40,
                                                                           "gap": 0.05}])
    assert up.helped is True and up.gap_narrowed is True
    assert up.text == "From 500 to 5,000 images, test accuracy went from 25.0% to 40.0%, and the train - test gap from +30.0 " \
           "to +5.0 points."
    under = data_size_verdict([{"value": 500, "test_acc": 0.20, "gap": -0.02}, {"value": 5000, "test_acc": 0.30,
                                                                              "gap": 0.01}])
    assert under.gap_narrowed is False and "still underfitting" in under.text
    flat = data_size_verdict([{"value": 500, "test_acc": 0.30, "gap": None}, {"value": 5000, "test_acc": 0.29,
                                                                           "gap": None}])
    assert flat.helped is False and "did not raise test accuracy" in flat.text
    assert data_size_verdict([{"value": 500, "test_acc": None}]).helped is None
