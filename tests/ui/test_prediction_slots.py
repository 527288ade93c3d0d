"""ui.pickers.test_predictions: a test split's predictions are computed once per (weights, split) for the whole
server - Streamlit's cache holds the slots - and a new checkpoint (another key) is computed anew. The oracle is
the number of model calls and the predictions of the model itself."""

from __future__ import annotations

import torch

from ui import pickers


class Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.fc = torch.nn.Linear(3 * 32 * 32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(x.flatten(1))


def source(model: torch.nn.Module, key: str) -> pickers.Source:
    return pickers.Source(model=model.eval(), config=None, classes=("a", "b", "c", "d"), mean=(0.5,) * 3,
                          std=(0.25,) * 3, run=None, key=key, label="test")


def test_predictions_are_computed_once_per_weights_and_split():
    torch.manual_seed(0)
    model = Counting()
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    split = pickers.TestSplit(x=x, y=torch.zeros(10, dtype=torch.long), classes=("a", "b", "c", "d"), coarse=None,
                              key="split-1")
    pickers.prediction_slot.clear()
    first = pickers.test_predictions(source(model, "weights-1"), split)
    calls = model.calls
    again = pickers.test_predictions(source(model, "weights-1"), split)  # another session, same weights
    assert calls >= 1 and model.calls == calls and again[0] is first[0]
    with torch.no_grad():
        expected = model((x.float() / 255 - 0.5) / 0.25).argmax(1)
    assert torch.equal(first[0], expected)
    pickers.test_predictions(source(model, "weights-2"), split)  # a new checkpoint: computed anew
    assert model.calls > calls + 1
