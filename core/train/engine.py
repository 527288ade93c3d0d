"""Training and evaluation: `train(config) -> Iterator[Event]` and `evaluate(model, x, y)`.

How a step works (the airbench recipe, same code on CPU and CUDA):
  the whole training set sits on the device as uint8  ->  index a batch  ->  augment + normalize on the device
  (core.train.batches, the same ops the preview page shows)  ->  forward under bf16 autocast (CUDA; on the CPU
  only when asked for, see `cpu_bf16_requested`; CPU evaluation stays fp32)  ->  backward  ->  fused optimizer
  step where torch has one.
Losses and accuracies are accumulated as device tensors and read back only every `log_every` steps, so the
GPU is never stalled by a per-step `.item()` (nor by a per-step host->device copy: every per-step constant is
made on the device). Each step's loss is kept on the device too and read back with the window, for the
divergence rule (core.train.divergence: a non-finite loss, or one that rose far above where it started and
stayed there, ends the run as `diverged` with the epoch, step and loss that showed it). Channels-last (NHWC) is used on the CPU too: measured faster there for every
convolutional model of the zoo (docs/PERFORMANCE.md).

`train()` reads as torchvision's reference script does: set-up (core.train.setup.prepare -> RunSetup, and a
RunState that a checkpoint saves and a resume restores), then per epoch `train_one_epoch` and `finish_epoch`
(evaluate, record, checkpoint); `Forward` is the forward pass and loss, with the torch.compile fall-back.
The engine knows nothing about Streamlit or the run library: it yields events (core.train.events) and, when
given a folder, writes checkpoints. Setup problems (missing data, bad model option) raise LabError before the
first event; problems during training end the run with a Finished(status="failed" | "diverged") event.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import TrainConfig
from core.data import augment as aug
from core.data.dataset import Dataset
from core.errors import LabError
from core.models.registry import count_params
from core.space import free_bytes as disk_free  # a name tests replace
from core.space import free_text, size_text
from core.train.checkpoint import is_disk_full, keep_as, latest_checkpoint, save_checkpoint
from core.train.divergence import Divergence, DivergenceDetector
from core.train.events import EpochEnd, Event, Finished, Note, RunStarted, Step
from core.train.files import BEST, LAST
from core.train.graphs import GraphedStep, set_lr, wants_graphs
from core.train.memory import estimate_run_memory
from core.train.schedule import lr_at
from core.train.setup import RunSetup, prepare, resolve_device, rng_states, run_dataset, set_rng_states

log = logging.getLogger(__name__)

# Devices where config.compile applies. On a CPU the compile warm-up (tens of seconds) outweighs a class-sized
# run; tests add "cpu" to drive the very same compile-and-fall-back path without a GPU.
COMPILE_DEVICES: tuple[str, ...] = ("cuda",)


class EvalResult(NamedTuple):
    loss: float  # mean cross-entropy (no label smoothing)
    acc: float  # fraction correct
    predictions: torch.Tensor  # (M,) int64 on CPU
    logits: torch.Tensor | None  # (M, C) float32 on CPU when asked for


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mean, std, batch_size: int = 1024,
             device: torch.device | str | None = None, amp: bool = True, channels_last: bool = False,
             return_logits: bool = False, cpu_amp: bool = False) -> EvalResult:
    """Loss, accuracy and predictions of `model` on uint8 images x (M, 3, H, W) with labels y (M,).
    The model is put in eval mode for the pass and its previous mode is restored afterwards.
    amp: bf16 autocast on CUDA; cpu_amp: also on the CPU. The engine leaves cpu_amp off even for runs that train
    in CPU bf16, so the accuracy a run reports is exactly what evaluate() with its defaults gives on the
    checkpoint (forward-only evaluation is a small part of a CPU epoch)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    bf16 = amp and (device.type == "cuda" or (cpu_amp and device.type == "cpu"))
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    preds, all_logits = [], []
    try:
        for i in range(0, len(x), batch_size):
            xb = aug.normalize(x[i:i + batch_size].to(device, non_blocking=True), mean, std)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(xb)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            preds.append(logits.argmax(1))
            if return_logits:
                all_logits.append(logits.cpu())
    finally:
        model.train(was_training)
    n = max(1, len(x))
    predictions = torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.long)
    acc = (predictions == y.cpu()).float().mean().item() if len(x) else 0.0
    return EvalResult(loss_sum.item() / n, acc, predictions, torch.cat(all_logits) if return_logits else None)


# --- the parts of a run --------------------------------------------------------------------------------------

@dataclass
class RunState:
    """Where a run is and what it has recorded: what a checkpoint saves and a resume restores."""

    epoch: int  # the epoch in progress (1-based)
    batch: int  # batches of it done
    step: int  # optimizer steps done in the whole run
    sums: torch.Tensor  # (3,) float64 on the device: this epoch's loss·n, correct, n
    started: float  # time.perf_counter() when train() was called
    history: list[dict[str, float]] = field(default_factory=list)  # one EpochEnd row per finished epoch
    best_acc: float | None = None
    aug_state: torch.Tensor | None = None  # a resumed checkpoint's augmentation generator, at `batch`
    per_class: tuple[float, ...] = ()  # per-class test accuracy of the latest evaluation
    saved_epochs: int | None = None  # epochs finished in the checkpoint on disk (None: no checkpoint yet)

    @classmethod
    def start(cls, run: RunSetup, checkpoint: dict[str, Any] | None, started: float) -> RunState:
        """A fresh run's state, or where `checkpoint` left off (LabError when that run already finished)."""
        if checkpoint is None:
            return cls(1, 0, 0, torch.zeros(3, device=run.device, dtype=torch.float64), started)
        epoch, batch = int(checkpoint["epoch"]), int(checkpoint["batch"])
        if epoch > run.config.epochs:
            raise LabError(f"this run already finished its {run.config.epochs} epochs; raise epochs to train further")
        sums = torch.tensor(checkpoint["sums"], device=run.device, dtype=torch.float64)
        history = list(checkpoint.get("history", []))
        return cls(epoch, batch, (epoch - 1) * run.steps_per_epoch + batch, sums, started, history,
                   checkpoint.get("best_acc"), checkpoint.get("aug_state"), saved_epochs=len(history))


def resume_checkpoint(folder: str | Path | None) -> dict[str, Any]:
    """The checkpoint a resumed run continues from: folder/last.pt (LabError when there is none)."""
    path = latest_checkpoint(folder)
    if path is None:
        raise LabError(f"nothing to resume: no checkpoint in {folder}")
    return torch.load(path, map_location="cpu", weights_only=True)


def save(run: RunSetup, state: RunState, folder: str | Path | None, *, best: bool = False) -> None:
    """Checkpoint the run to folder/last.pt (nothing without a folder) and, with `best`, make best.pt that very
    file (a hard link: written once). A save the disk had no room for is a LabError that says so: torch.save
    words it as 'file write failed', 'iostream error' or 'unexpected pos', so the free space is asked too."""
    if folder is None:
        return
    gen = run.batches.generator
    last = Path(folder) / LAST
    try:
        save_checkpoint(last, model=run.model, optimizer=run.optimizer, config=run.config,
                        epoch=state.epoch, batch=state.batch, sums=state.sums.tolist(), history=state.history,
                        best_acc=state.best_acc, aug_state=gen.get_state() if gen is not None else None,
                        classes=list(run.dataset.classes), mean=list(run.mean), std=list(run.std),
                        rng=(run.device.type, *rng_states(run.device)))
        if best:
            keep_as(last, last.with_name(BEST))
    except Exception as e:
        if is_disk_full(e) or short_of_room(run, folder):
            raise LabError(disk_full_reason(state, folder)) from None
        raise
    state.saved_epochs = len(state.history)


def short_of_room(run: RunSetup, folder: str | Path) -> bool:
    """Whether the disk of `folder` lacks room for one more checkpoint of the run (after a failed save)."""
    try:
        return disk_free(folder) < estimate_run_memory(run.config, run.device.type).checkpoint
    except OSError:
        return False


def disk_full_reason(state: RunState, folder: str | Path) -> str:
    """Why the run failed when its checkpoint did not fit, what is kept, and what to do."""
    done = state.saved_epochs
    kept = ("it had not finished an epoch, so there is nothing to resume" if done is None
            else f"its checkpoint {f'after epoch {done}' if done else 'from epoch 1'} is kept: resume the run once "
                 f"there is room")
    return (f"the disk is full: a checkpoint could not be written ({free_text(folder, disk_free)}). Delete runs you no longer "
            f"need (the run library's Delete, or `python -m core runs delete ID`); {kept}")


def finished(state: RunState, status: str, reason: str = "", *, at: Divergence | None = None) -> Finished:
    """The run's last event (`at`: where a diverged run showed it)."""
    final = state.history[-1]["test_acc"] if state.history else None
    where = dict(epoch=at.epoch, step=at.step, loss=at.loss) if at is not None else {}
    return Finished(status=status, reason=reason, test_acc=final, best_test_acc=state.best_acc,
                    epochs_done=len(state.history), seconds=time.perf_counter() - state.started,
                    per_class_acc=state.per_class, **where)


def check_room(run: RunSetup, folder: str | Path | None) -> None:
    """LabError, before the first step, when the checkpoint folder's disk has no room for one checkpoint: the run
    would train an epoch and then fail to save it. One checkpoint is the run's weights and optimizer state (core.
    train.memory): a new last.pt is written beside the old one, then replaces it, and best.pt is a link, so one
    checkpoint's room is all a save needs."""
    if folder is None:
        return
    need = estimate_run_memory(run.config, run.device.type).checkpoint
    try:
        free = disk_free(folder)
    except OSError:
        return  # unknown: the save itself will say if it fails
    if free < need * 1.05:
        raise LabError(f"not enough disk space for this run: one checkpoint of {run.config.model.name} takes about "
                       f"{size_text(need)} and {size_text(free)} are free in {folder}. Delete runs you no "
                       f"longer need (the run library's Delete, or `python -m core runs delete ID`), or choose a "
                       f"smaller model")


def is_oom(e: BaseException) -> bool:
    """Whether `e` means the device (or the host) ran out of memory."""
    return isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in str(e).lower() \
        or "can't allocate memory" in str(e).lower()


def failure(e: Exception, run: RunSetup, state: RunState) -> Finished:
    """The Finished event of a run that raised `e` during training (call it while handling `e`)."""
    if is_oom(e):
        if run.device.type == "cuda":
            torch.cuda.empty_cache()
        return finished(state, "failed", f"out of memory on {run.device} at batch size {run.config.batch_size}: "
                                         f"try a smaller batch size, a smaller model or a smaller image size (the "
                                         f"run's last checkpoint, if any, is kept)")
    if isinstance(e, LabError):
        return finished(state, "failed", str(e))
    log.exception("training failed")
    return finished(state, "failed", f"{type(e).__name__}: {e}")


class Forward:
    """logits, loss = forward(xb, yb): the model's forward pass and its float32 loss, under the run's autocast.

    With a torch.compile'd module that module runs until its first call has returned; if that call fails (other
    than for memory), `fall_back` switches to the eager model for good and says so."""

    def __init__(self, run: RunSetup, compiled: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.run = run
        self.fn: Callable[[torch.Tensor], torch.Tensor] = compiled if compiled is not None else run.model
        self.proven = compiled is None  # a compiled module is trusted once one call of it has returned

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=self.run.device.type, dtype=torch.bfloat16, enabled=self.run.bf16):
            logits = self.fn(xb)  # (B, C)
            loss = self.run.criterion(logits.float(), yb)
        return logits, loss

    def fall_back(self, e: Exception) -> str | None:
        """After a failed call: the Note to give when this was the compiled module's first call (the eager model
        runs from now on), or None when `e` is the run's to handle."""
        if self.proven or is_oom(e):
            return None
        self.fn, self.proven = self.run.model, True
        return f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training without it"


def make_forward(run: RunSetup) -> tuple[Forward, str | None]:
    """The run's Forward (compiled where config.compile applies) and a Note's text when compile is unavailable."""
    if run.config.compile and run.device.type in COMPILE_DEVICES:
        try:
            return Forward(run, torch.compile(run.model)), None
        except Exception as e:  # noqa: BLE001 - compile is an optimization; eager always works
            return Forward(run), f"torch.compile is not available ({type(e).__name__}); training without it"
    return Forward(run), None


def train_one_epoch(run: RunSetup, state: RunState, forward: Forward, should_stop: Callable[[], bool],
                    checkpoint_dir: str | Path | None, graph: GraphedStep | None = None,
                    detector: DivergenceDetector | None = None) -> Generator[Event, None, float | None]:
    """Train epoch state.epoch from batch state.batch to its end, yielding Note and Step events. Returns the
    seconds spent training, or None when the run ended here (a stop request, or the detector found it diverged):
    its Finished event was then the last one yielded. graph: the CUDA-graphed step full batches go through
    (core.train.graphs); other batches, and every batch after a failed capture, step eagerly. detector: is fed
    every step's loss (a fresh one per call when not given)."""
    config, device, optimizer, batches = run.config, run.device, run.optimizer, run.batches
    spe = run.steps_per_epoch
    batches.start_epoch(state.epoch, at=state.batch, aug_state=state.aug_state)
    state.aug_state = None  # a checkpoint's generator state belongs to the epoch it was saved in
    ones = torch.ones(2, device=device, dtype=torch.float64)  # a device constant: no host->device copy per step
    window = torch.zeros(2, device=device, dtype=torch.float64)  # since the last Step event: loss·n, n
    step_losses: list[torch.Tensor] = []  # each step's loss since the last Step event, on the device
    detector = detector if detector is not None else DivergenceDetector(run.dataset.num_classes)
    t_window, n_window, train_seconds = time.perf_counter(), 0, 0.0
    lrs: dict[int, float] = {}  # step -> its learning rate, since the last Step event
    while state.batch < spe:
        if should_stop():
            save(run, state, checkpoint_dir)
            yield finished(state, "stopped", f"stopped by request at epoch {state.epoch}, step {state.step}")
            return None
        xb, yb = batches.next_batch()  # (B, 3, H, W) float32 normalized and augmented, (B,) int64
        lr = lr_at(config.optim, state.step, spe, config.epochs)
        lrs[state.step + 1] = lr
        set_lr(optimizer, lr)  # a graphed step reads it from a device tensor
        graphed = graph.step(xb, yb) if graph is not None and graph.fits(xb) else None
        if graph is not None and graph.note is not None:  # the capture failed: this batch trains eagerly
            yield Note(graph.note)
            graph.note = None
        if graphed is not None:
            logits, loss = graphed  # forward, backward and optimizer step, replayed
        else:
            try:
                logits, loss = forward(xb, yb)
            except Exception as e:  # noqa: BLE001 - a failing torch.compile falls back once, loudly
                note = forward.fall_back(e)
                if note is None:
                    raise
                yield Note(note)
                logits, loss = forward(xb, yb)  # the same batch, eagerly: a new one would shift the augmentation
            forward.proven = True
            if graph is not None:
                graph.zero_grad()  # in place once captured: the graph owns the gradient tensors
            else:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        state.step += 1
        state.batch += 1
        n = len(yb)
        # Bookkeeping on the device with Python scalars only: torch.tensor(x, device=cuda) would be a
        # blocking host->device copy, i.e. a host sync, every step.
        loss_d = loss.detach().to(torch.float64, copy=True)  # a graphed step's loss is overwritten by the next replay
        step_losses.append(loss_d)
        loss_n = loss_d * n  # (,)
        window += torch.stack([loss_n, ones[0] * n])
        correct = (logits.detach().argmax(1) == yb).sum().double()
        state.sums += torch.stack([loss_n, correct, ones[1] * n])
        n_window += n

        if state.step % config.log_every == 0 or state.batch == spe:
            w_loss, w_n, *losses = torch.cat([window, *(x.view(1) for x in step_losses)]).tolist()  # one host sync
            now = time.perf_counter()
            train_seconds += now - t_window
            first = state.step - len(losses) + 1
            found = next((d for d in (detector.feed(first + i, state.epoch, x) for i, x in enumerate(losses))
                          if d is not None), None)
            if found is not None:
                yield finished(state, "diverged", found.reason(lrs.get(found.step, lr)), at=found)
                return None
            step_losses.clear()
            yield Step(epoch=state.epoch, step=state.step, total_steps=run.total_steps, loss=w_loss / max(1.0, w_n),
                       lr=lr, images_per_s=n_window / max(1e-9, now - t_window))
            window.zero_()
            t_window, n_window = time.perf_counter(), 0
            lrs.clear()
    return train_seconds


def finish_epoch(run: RunSetup, state: RunState, t_epoch: float, train_seconds: float,
                 checkpoint_dir: str | Path | None) -> Generator[Event, None, bool]:
    """Evaluate the epoch just trained, record it (EpochEnd), move on to the next and checkpoint (best.pt when
    the test accuracy improved, always last.pt). Returns True when the run ended here instead (a non-finite
    test loss: its Finished event was the last one yielded). t_epoch: perf_counter() when the epoch began."""
    config = run.config
    result = evaluate(run.model, run.test_x, run.test_y, mean=run.mean, std=run.std,
                      batch_size=config.eval_batch_size, device=run.device, amp=config.amp,
                      channels_last=run.channels_last)
    loss_sum, correct, seen = state.sums.tolist()
    if not math.isfinite(result.loss):
        at = Divergence(state.epoch, state.step, result.loss, math.nan, non_finite=True)
        yield finished(state, "diverged", f"diverged at the end of epoch {state.epoch}, step {state.step}: test loss "
                                          f"{result.loss:.3g} - try a lower learning rate", at=at)
        return True
    row = dict(epoch=state.epoch, train_loss=loss_sum / max(1.0, seen), train_acc=correct / max(1.0, seen),
               test_loss=result.loss, test_acc=result.acc,
               lr=lr_at(config.optim, state.step - 1, run.steps_per_epoch, config.epochs),
               seconds=time.perf_counter() - t_epoch, images_per_s=seen / max(1e-9, train_seconds))
    state.history.append(row)
    state.per_class = per_class_accuracy(result.predictions, run.test_y.cpu(), run.dataset.num_classes)
    improved = state.best_acc is None or result.acc > state.best_acc
    state.best_acc = result.acc if improved else state.best_acc
    yield EpochEnd(**row)
    state.epoch, state.batch = state.epoch + 1, 0
    state.sums.zero_()
    save(run, state, checkpoint_dir, best=improved)
    return False


def train(config: TrainConfig, should_stop: Callable[[], bool] | None = None, *,
          dataset: Dataset | None = None, data_root: str | Path | None = None, download: bool = False,
          data_progress: Callable[[int, int | None], None] | None = None,
          checkpoint_dir: str | Path | None = None, resume: bool = False) -> Iterator[Event]:
    """Train `config`, yielding RunStarted, Step (every log_every steps), EpochEnd, Note and a final Finished.

    should_stop is polled before every step; when it returns True the run saves a checkpoint (if it has a
    checkpoint_dir) and finishes as `stopped`. With resume=True the run continues from checkpoint_dir/last.pt,
    mid-epoch included, with the same data order and augmentation it would have had.
    """
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    # ---- set-up: anything wrong here is the user's to fix and raises LabError ----
    device = resolve_device(config.device)
    dataset = run_dataset(config, dataset, data_root, download=download, progress=data_progress)
    checkpoint = resume_checkpoint(checkpoint_dir) if resume else None
    if device.type == "cuda":  # fixed input shapes: let cuDNN time its algorithms once and keep the fastest
        torch.backends.cudnn.benchmark = True
    try:
        run = prepare(config, dataset, device, checkpoint=checkpoint)
    except Exception as e:  # the model or the data did not fit the device: the user's to change
        if not is_oom(e):
            raise
        raise LabError(f"out of memory on {device} while setting up the run (model, optimizer and data at batch size "
                       f"{config.batch_size}): try a smaller batch size, model or training subset, or wait for the "
                       f"device's other runs to finish") from None
    check_room(run, checkpoint_dir)
    state = RunState.start(run, checkpoint, started)
    graph = None
    if wants_graphs(config, device):  # the graph captures the eager model; compile would only add a warm-up
        forward, note = Forward(run), "torch.compile is not used with cuda_graphs" if config.compile else None
        graph = GraphedStep(run.model, run.optimizer, run.criterion, device, config.batch_size, bf16=run.bf16)
    else:
        forward, note = make_forward(run)
    if note is not None:
        yield Note(note)
    yield RunStarted(params=count_params(run.model), trainable_params=count_params(run.model, trainable_only=True),
                     device=str(device), dataset=dataset.name, model=config.model.name,
                     train_size=len(run.batches.x), test_size=len(run.test_x), num_classes=dataset.num_classes,
                     steps_per_epoch=run.steps_per_epoch, epochs=config.epochs, start_epoch=state.epoch)
    restore_rng(run, checkpoint)
    detector = DivergenceDetector(dataset.num_classes)  # a resumed run starts from its resumed loss
    # ---- the loop ----
    try:
        run.model.train()
        while state.epoch <= config.epochs:
            t_epoch = time.perf_counter()
            train_seconds = yield from train_one_epoch(run, state, forward, should_stop, checkpoint_dir, graph,
                                                       detector)
            if train_seconds is None or (yield from finish_epoch(run, state, t_epoch, train_seconds, checkpoint_dir)):
                return  # stopped or diverged: its Finished event was the last
        yield finished(state, "completed")
    except Exception as e:  # noqa: BLE001 - any failure ends the run with its reason; the traceback goes to the log
        yield failure(e, run, state)


def restore_rng(run: RunSetup, checkpoint: dict[str, Any] | None) -> None:
    """A resumed run draws the dropout masks the uninterrupted run would have drawn: the RNG states saved with
    the checkpoint go back in place just before the loop (after the set-up, which draws from them). A device
    state from another kind of device is left out; a checkpoint without states (an older lab) resumes as before,
    with fresh masks."""
    saved = (checkpoint or {}).get("rng")
    if not saved:
        return
    device_state = saved.get("state") if saved.get("device") == run.device.type else None
    set_rng_states(run.device, (saved["cpu"], device_state))


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, ...]:
    """Fraction correct per class (index = label); classes absent from `labels` get NaN."""
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    total = torch.bincount(labels, minlength=num_classes).double()
    return tuple((correct / total).tolist())

