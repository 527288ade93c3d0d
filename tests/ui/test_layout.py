"""ui.layout.metric_columns: a row of metrics, split into rows of at most three in presenter mode so that the
projector-sized numbers stay whole (the oracle: the st.columns calls it makes and the columns it hands back)."""

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
