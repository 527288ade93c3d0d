"""ui.layout.metric_columns: a row of metrics, split into rows of at most three in presenter mode so that the
projector-sized numbers stay whole (the oracle: the st.columns calls it makes and the columns it hands back);
ui.layout.friendly_errors: a LabError as its message, any other failure as a plain line with its traceback logged."""

import logging
import re

import pytest

from ui import layout


class Where:
    """Stands in for st / a container: records each st.columns(n) call."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def columns(self, n: int) -> list[str]:
        self.rows.append(n)
        return [f"row{len(self.rows)}.col{i}" for i in range(n)]


@pytest.mark.parametrize(("presenting", "n", "rows", "first_of_last_row"), [
    (False, 5, [5], "row1.col0"),
    (True, 5, [3, 3], "row2.col0"),   # 3 + 2, the second row at the first one's widths
    (True, 3, [3], "row1.col0"),
    (True, 7, [3, 3, 3], "row3.col0"),
    (False, 1, [1], "row1.col0"),
])
def test_metric_columns_wrap_only_in_presenter_mode(monkeypatch, presenting, n, rows, first_of_last_row):
    monkeypatch.setattr(layout, "presenter", lambda: presenting)
    where = Where()
    cols = layout.metric_columns(n, where)
    assert where.rows == rows and len(cols) == n
    last_row = len(rows)
    assert [c for c in cols if c.startswith(f"row{last_row}.")][0] == first_of_last_row


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    """The error boxes friendly_errors draws (ui.text.error, as it is called from ui.layout)."""
    boxes: list[str] = []
    monkeypatch.setattr(layout, "error", lambda text, **kw: boxes.append(text))
    return boxes


def test_a_lab_error_is_its_one_line_message_and_no_log(shown, caplog):
    from core.errors import ConfigError

    with caplog.at_level(logging.DEBUG, logger="ui.layout"), layout.friendly_errors("Starting the run"):
        raise ConfigError("epochs must be at least 1: set Epochs to 1 or more.")
    assert shown == ["epochs must be at least 1: set Epochs to 1 or more."]
    assert caplog.records == []


def test_a_bug_is_a_plain_message_and_its_traceback_goes_to_the_log(shown, caplog):
    def deep_inside() -> None:
        raise KeyError("conv3")

    with caplog.at_level(logging.ERROR, logger="ui.layout"), layout.friendly_errors("Drawing the filters"):
        deep_inside()
    [box] = shown
    assert box.startswith("Drawing the filters failed:") and "server's log" in box
    assert "KeyError" not in box and "conv3" not in box  # the evidence is in the log, not the page
    [record] = caplog.records
    ref = re.search(r"reference ([0-9a-f]{8})", box).group(1)
    assert record.levelno == logging.ERROR and ref in record.getMessage()
    assert record.exc_info[0] is KeyError
    assert "deep_inside" in caplog.text and "KeyError: 'conv3'" in caplog.text  # the whole traceback


def test_streamlit_control_flow_passes_through(shown):
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    with pytest.raises(StopException), layout.friendly_errors():
        raise StopException()
    assert shown == []
