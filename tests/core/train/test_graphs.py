"""The CUDA-graph training step on the CPU: a failing capture (forced: the CPU has no CUDA) falls back to the very
run eager training gives, warm-up undone; a "captured" step (a stand-in graph whose replay re-runs the captured
body) with an eager last partial batch gives the same run too, and so do stop + resume and the LR schedule."""

import contextlib
import types
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data.synthetic import make_synthetic
from core.train import engine, graphs
from core.train import events as ev


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(train_per_class=22, test_per_class=5)  # 220 images: batches of 64 leave 28


def config(**kw) -> TrainConfig:
    base = dict(data=DataConfig(dataset="synthetic"), device="cpu", batch_size=64, epochs=2, log_every=2,
                model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 16, "batch_norm": True, "dropout": 0.3}),
                optim=OptimConfig(name="adam", lr=3e-3, schedule="onecycle", warmup_epochs=0.5))
    base.update(kw)
    return TrainConfig(**base)


def epochs(events) -> list[tuple]:
    return [(e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr) for e in events
            if isinstance(e, ev.EpochEnd)]


def notes(events) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.Note)]


@pytest.fixture
def graphs_on_cpu(monkeypatch):
    monkeypatch.setattr(graphs, "GRAPH_DEVICES", ("cuda", "cpu"))


@pytest.fixture
def stand_in_graph(monkeypatch, graphs_on_cpu):
    """A 'captured' graph on the CPU: capturing runs the body once (undone with the warm-up), replay runs it."""
    monkeypatch.setattr(graphs.GraphedStep, "new_graph", lambda self: types.SimpleNamespace(replay=self.body))
    monkeypatch.setattr(graphs.GraphedStep, "capturing", lambda self, graph: contextlib.nullcontext())


@pytest.mark.parametrize("optim", [OptimConfig(name="adam", lr=3e-3, schedule="onecycle", warmup_epochs=0.5),
                                   OptimConfig(name="sgd", lr=0.05, momentum=0.9, nesterov=True)])
def test_a_failed_capture_falls_back_to_exactly_the_eager_run(ds, graphs_on_cpu, optim):
    eager = list(engine.train(config(optim=optim, cuda_graphs=False), dataset=ds))
    events = list(engine.train(config(optim=optim), dataset=ds))
    assert len(notes(events)) == 1 and notes(events)[0].startswith("CUDA graph capture failed (")
    assert notes(events)[0].endswith("training without it")
    assert events[-1].status == "completed" and epochs(events) == epochs(eager)  # the warm-up left no trace


def test_graphs_are_not_tried_on_the_cpu_by_default(ds, monkeypatch):
    monkeypatch.setattr(graphs.GraphedStep, "step", lambda *a: pytest.fail("no graph on a CPU by default"))
    events = list(engine.train(config(), dataset=ds))
    assert notes(events) == [] and events[-1].status == "completed"


def test_a_captured_step_and_its_eager_partial_batch_train_the_eager_run(ds, stand_in_graph):
    eager = list(engine.train(config(cuda_graphs=False), dataset=ds))
    replays = []
    real_step = graphs.GraphedStep.step

    def counting(self, x, y):
        replays.append(len(x))
        return real_step(self, x, y)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(graphs.GraphedStep, "step", counting)
        events = list(engine.train(config(), dataset=ds))
    assert notes(events) == [] and events[-1].status == "completed"
    assert replays == [64] * 6  # 3 full batches per epoch through the graph; the 28-image batches ran eagerly
    assert epochs(events) == epochs(eager)  # same weights, LR schedule, BN statistics, dropout, metrics


def test_stop_and_resume_through_the_graph_continue_the_same_run(ds, stand_in_graph, tmp_path):
    # with dropout: the checkpoint carries the RNG states, so the resumed half draws the same masks
    cfg = config(model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 16, "batch_norm": True, "dropout": 0.5}))
    whole = list(engine.train(cfg, dataset=ds))
    polls = iter([False] * 5 + [True])  # stops mid-epoch 2, after a captured step and an eager partial batch
    first = list(engine.train(cfg, should_stop=lambda: next(polls, True), dataset=ds, checkpoint_dir=tmp_path))
    assert first[-1].status == "stopped"
    rest = list(engine.train(cfg, dataset=ds, checkpoint_dir=tmp_path, resume=True))
    assert rest[-1].status == "completed" and epochs(first) + epochs(rest) == epochs(whole)


def test_set_lr_fills_a_device_tensor_in_place_and_plain_groups_undo_a_capture():
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    lr = torch.tensor(0.1)
    opt.param_groups[0].update(lr=lr, capturable=True)
    graphs.set_lr(opt, 0.25)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.25
    graphs.plain_groups(opt)
    assert opt.param_groups[0]["lr"] == 0.25 and not isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    assert opt.param_groups[0]["capturable"] is False
    graphs.set_lr(opt, 0.5)
    assert opt.param_groups[0]["lr"] == 0.5
    assert graphs.wants_graphs(config(), torch.device("cuda")) and not graphs.wants_graphs(
        replace(config(), cuda_graphs=False), torch.device("cuda"))
    assert not graphs.wants_graphs(config(), torch.device("cpu"))
