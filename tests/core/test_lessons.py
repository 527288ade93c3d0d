"""Findings compare the lab's gains with the report's and say so honestly."""

import pytest

from core.lessons.findings import compare_with_report


def test_agreeing_and_disagreeing_gains():
    found = {f.preset: f for f in compare_with_report({"cnn": 0.30, "cnn-flip": 0.34, "cnn-flip-crop": 0.31,
                                                       "mlp": 0.25})}
    assert found["cnn"].verdict == "agrees" and found["cnn"].lab_gain == pytest.approx(0.05)
    assert found["cnn-flip"].verdict == "agrees"
    crop = found["cnn-flip-crop"]
    assert crop.verdict == "disagrees" and crop.report_gain == pytest.approx(0.03)
    assert "disagrees with the report" in crop.message and "underfitting" in crop.message  # the preset's caveat


def test_small_gains_are_called_unclear_and_missing_baselines_skipped():
    found = {f.preset: f for f in compare_with_report({"cnn": 0.300, "cnn-128": 0.305, "cnn-bn": 0.5})}
    assert found["cnn-128"].verdict == "unclear" and "no clear difference" in found["cnn-128"].message
    assert "cnn-bn" in found  # its baseline cnn-128 is present
    assert "cnn" not in found  # its baseline mlp has no result
