"""Training and evaluation: `train(config) -> Iterator[Event]` and `evaluate(model, x, y)`.

How a step works (the airbench recipe, same code on CPU and CUDA):
  the whole training set sits on the device as uint8  ->  index a batch  ->  augment + normalize on the device
  (core/augment.py, the same ops the preview page shows)  ->  forward under bf16 autocast (CUDA; on the CPU only
  when asked for, see `cpu_bf16_requested`; CPU evaluation stays fp32)  ->  backward  ->  fused optimizer step
  where torch has one.
Losses and accuracies are accumulated as device tensors and read back only every `log_every` steps, so the
GPU is never stalled by a per-step `.item()` (nor by a per-step host->device copy: every per-step constant is
made on the device). A non-finite loss is still caught exactly: the first bad step is remembered on the device
and reported when the run syncs. Channels-last (NHWC) is used on the CPU too: measured faster there for every
convolutional model of the zoo (docs/PERFORMANCE.md).

The engine knows nothing about Streamlit or the run library: it yields events (core/events.py) and, when given
a folder, writes checkpoints. Setup problems (missing data, bad model option) raise LabError before the first
event; problems during training end the run with a Finished(status="failed" | "diverged") event.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from core import data as data_mod
from core.config import TrainConfig
from core.data import augment as aug
from core.errors import LabError
from core.models.registry import IMAGENET_MEAN, IMAGENET_STD, build_for_config, count_params, get_entry
from core.train.checkpoint import latest_checkpoint, save_checkpoint
from core.train.events import EpochEnd, Event, Finished, Note, RunStarted, Step
from core.train.schedule import lr_at, steps_per_epoch
from core.train.setup import (  # noqa: F401 - re-exported: core.train.engine is where callers look for these
    CPU_BF16_ENV,
    _accepts_fused,
    _resident,
    _rows,
    available_devices,
    build_optimizer,
    cpu_bf16_requested,
    cpu_has_native_bf16,
    epoch_permutation,
    resolve_device,
    use_amp,
    use_channels_last,
)

log = logging.getLogger(__name__)

# Offsets that give each epoch its own data order and augmentation stream, derived from the run's seed,
# so a run resumed at epoch e sees exactly the batches it would have seen.
_PERM_SEED = 1_000_003
_AUG_SEED = 7_919
# Devices where config.compile applies. On a CPU the compile warm-up (tens of seconds) outweighs a class-sized
# run; tests add "cpu" to drive the very same compile-and-fall-back path without a GPU.
COMPILE_DEVICES: tuple[str, ...] = ("cuda",)


def input_stats(config: TrainConfig, dataset: data_mod.Dataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std the inputs are normalized with: ImageNet's for pretrained models, else the dataset's."""
    if get_entry(config.model.name).input_norm == "imagenet":
        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)
    return tuple(dataset.mean), tuple(dataset.std)


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


def _oom_reason(device: torch.device, config: TrainConfig) -> str:
    return (f"out of memory on {device} at batch size {config.batch_size}: try a smaller batch size, a smaller "
            f"model or a smaller image size (the run's last checkpoint, if any, is kept)")


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in str(e).lower() \
        or "can't allocate memory" in str(e).lower()


def train(config: TrainConfig, should_stop: Callable[[], bool] | None = None, *,
          dataset: data_mod.Dataset | None = None, data_root: str | Path | None = None, download: bool = False,
          data_progress: Callable[[int, int | None], None] | None = None,
          checkpoint_dir: str | Path | None = None, resume: bool = False) -> Iterator[Event]:
    """Train `config`, yielding RunStarted, Step (every log_every steps), EpochEnd, Note and a final Finished.

    should_stop is polled before every step; when it returns True the run saves a checkpoint (if it has a
    checkpoint_dir) and finishes as `stopped`. With resume=True the run continues from checkpoint_dir/last.pt,
    mid-epoch included, with the same data order and augmentation it would have had.
    """
    should_stop = should_stop or (lambda: False)
    t_run = time.perf_counter()

    # ---- set-up: anything wrong here is the user's to fix and raises LabError ----
    device = resolve_device(config.device)
    if dataset is None:
        dataset = data_mod.load(config.data, data_root, download=download, progress=data_progress, seed=config.seed)
    else:
        dataset = data_mod.stratified_subset(dataset, config.data.subset, config.data.test_subset, seed=config.seed)
    state: dict[str, Any] | None = None
    if resume:
        ckpt = latest_checkpoint(checkpoint_dir)
        if ckpt is None:
            raise LabError(f"nothing to resume: no checkpoint in {checkpoint_dir}")
        state = torch.load(ckpt, map_location="cpu", weights_only=True)

    torch.manual_seed(config.seed)  # weight init and dropout; data order and augmentation have their own generators
    model = build_for_config(config, dataset.num_classes, load_pretrained=state is None)
    cuda = device.type == "cuda"
    if cuda:  # fixed input shapes: let cuDNN time its algorithms once and keep the fastest
        torch.backends.cudnn.benchmark = True
    bf16 = use_amp(config, device)
    mem_format = torch.channels_last if use_channels_last(config, device) else torch.contiguous_format
    model = model.to(device=device, memory_format=mem_format)
    optimizer = build_optimizer(model, config)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    mean, std = input_stats(config, dataset)
    train_x, train_y = _resident(dataset.train_x, device), _resident(dataset.train_y, device)
    test_x, test_y = _resident(dataset.test_x, device), _resident(dataset.test_y, device)
    n_train = len(train_x)
    spe = steps_per_epoch(n_train, config.batch_size)
    total_steps = spe * config.epochs
    criterion = nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing)

    start_epoch, start_batch = 1, 0
    history: list[dict[str, float]] = []
    best_acc: float | None = None
    sums = torch.zeros(3, device=device, dtype=torch.float64)  # epoch: loss·n, correct, n
    ones = torch.ones(2, device=device, dtype=torch.float64)  # a device constant: no host->device copy per step
    if state is not None:
        start_epoch, start_batch = int(state["epoch"]), int(state["batch"])
        history = list(state.get("history", []))
        best_acc = state.get("best_acc")
        sums = torch.tensor(state["sums"], device=device, dtype=torch.float64)
        if start_epoch > config.epochs:
            raise LabError(f"this run already finished its {config.epochs} epochs; raise epochs to train further")

    step_fn = model
    if config.compile and device.type in COMPILE_DEVICES:
        try:
            step_fn = torch.compile(model)
        except Exception as e:  # noqa: BLE001 - compile is an optimization; eager always works
            step_fn = model
            yield Note(f"torch.compile is not available ({type(e).__name__}); training without it")

    yield RunStarted(params=count_params(model), trainable_params=count_params(model, trainable_only=True),
                     device=str(device), dataset=dataset.name, model=config.model.name, train_size=n_train,
                     test_size=len(test_x), num_classes=dataset.num_classes, steps_per_epoch=spe,
                     epochs=config.epochs, start_epoch=start_epoch)

    # ---- the loop ----
    epoch, b = start_epoch, start_batch
    step = (start_epoch - 1) * spe + start_batch  # optimizer steps done
    aug_gen: torch.Generator | None = None
    compiled_checked = step_fn is model

    def checkpoint(name: str = "last.pt") -> None:
        if checkpoint_dir is not None:
            save_checkpoint(Path(checkpoint_dir) / name, model=model, optimizer=optimizer, config=config,
                            epoch=epoch, batch=b, sums=sums.tolist(), history=history, best_acc=best_acc,
                            aug_state=aug_gen.get_state() if aug_gen is not None else None,
                            classes=list(dataset.classes), mean=list(mean), std=list(std))

    per_class: tuple[float, ...] = ()

    def finished(status: str, reason: str = "") -> Finished:
        final = history[-1]["test_acc"] if history else None
        return Finished(status=status, reason=reason, test_acc=final, best_test_acc=best_acc,
                        epochs_done=len(history), seconds=time.perf_counter() - t_run, per_class_acc=per_class)

    try:
        model.train()
        while epoch <= config.epochs:
            t_epoch = time.perf_counter()
            perm = epoch_permutation(n_train, config.seed * _PERM_SEED + epoch, train_x.device)
            aug_gen = aug.make_generator(config.seed * _PERM_SEED + _AUG_SEED + epoch, device)
            if b > 0 and state is not None and state.get("aug_state") is not None:
                aug_gen.set_state(state["aug_state"])
            # Window accumulators since the last Step event: loss·n, n; first non-finite step (inf = none).
            window = torch.zeros(2, device=device, dtype=torch.float64)
            first_bad = torch.full((), math.inf, device=device, dtype=torch.float64)
            t_window, n_window, train_seconds = time.perf_counter(), 0, 0.0
            lrs: dict[int, float] = {}
            while b < spe:
                if should_stop():
                    checkpoint()
                    yield finished("stopped", f"stopped by request at epoch {epoch}, step {step}")
                    return
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                # index_select, not train_x[idx]: the same bytes, ~15x faster for uint8 images on the CPU
                xb = aug.train_batch(_rows(train_x, idx, device), config.data.augment, aug_gen, mean, std)
                xb = xb.contiguous(memory_format=mem_format)
                yb = _rows(train_y, idx, device)
                lr = lr_at(config.optim, step, spe, config.epochs)
                lrs[step + 1] = lr
                for group in optimizer.param_groups:
                    group["lr"] = lr
                try:
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                        logits = step_fn(xb)
                        loss = criterion(logits.float(), yb)
                except Exception as e:  # noqa: BLE001 - a failing torch.compile falls back once, loudly
                    if compiled_checked or _is_oom(e):
                        raise
                    step_fn, compiled_checked = model, True
                    yield Note(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training without it")
                    # the same batch again, eagerly: drawing a new one would shift the augmentation stream
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                        logits = step_fn(xb)
                        loss = criterion(logits.float(), yb)
                compiled_checked = True
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                b += 1
                n = len(idx)
                # Bookkeeping on the device with Python scalars only: torch.tensor(x, device=cuda) would be a
                # blocking host->device copy, i.e. a host sync, every step.
                loss_d = loss.detach().double()
                first_bad.masked_fill_(~torch.isfinite(loss_d) & torch.isinf(first_bad), float(step))
                loss_n = loss_d * n  # (,)
                window += torch.stack([loss_n, ones[0] * n])
                correct = (logits.detach().argmax(1) == yb).sum().double()
                sums += torch.stack([loss_n, correct, ones[1] * n])
                n_window += n

                if step % config.log_every == 0 or b == spe:
                    # the one host sync of the window
                    w_loss, w_n, bad_step = torch.cat([window, first_bad.view(1)]).tolist()
                    now = time.perf_counter()
                    train_seconds += now - t_window
                    if math.isfinite(bad_step):
                        s = int(bad_step)
                        yield finished("diverged", f"loss became non-finite at step {s} (epoch {epoch}) with "
                                                   f"learning rate {lrs.get(s, lr):.3g}: try a lower learning rate")
                        return
                    yield Step(epoch=epoch, step=step, total_steps=total_steps, loss=w_loss / max(1.0, w_n), lr=lr,
                               images_per_s=n_window / max(1e-9, now - t_window))
                    window.zero_()
                    t_window, n_window = time.perf_counter(), 0
                    lrs.clear()

            # ---- end of epoch: evaluate, record, checkpoint ----
            ev = evaluate(model, test_x, test_y, mean=mean, std=std, batch_size=config.eval_batch_size,
                          device=device, amp=config.amp, channels_last=mem_format == torch.channels_last)
            loss_sum, correct, seen = sums.tolist()
            if not math.isfinite(ev.loss):
                yield finished("diverged", f"test loss became non-finite at the end of epoch {epoch}: try a lower "
                                           f"learning rate")
                return
            row = dict(epoch=epoch, train_loss=loss_sum / max(1.0, seen), train_acc=correct / max(1.0, seen),
                       test_loss=ev.loss, test_acc=ev.acc, lr=lr_at(config.optim, step - 1, spe, config.epochs),
                       seconds=time.perf_counter() - t_epoch, images_per_s=seen / max(1e-9, train_seconds))
            history.append(row)
            per_class = per_class_accuracy(ev.predictions, test_y.cpu(), dataset.num_classes)
            improved = best_acc is None or ev.acc > best_acc
            best_acc = ev.acc if improved else best_acc
            yield EpochEnd(**row)
            epoch, b = epoch + 1, 0
            sums.zero_()
            if improved:
                checkpoint("best.pt")
            checkpoint()
        yield finished("completed")
    except Exception as e:  # noqa: BLE001 - any failure ends the run with its reason; the traceback goes to the log
        if _is_oom(e):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            yield finished("failed", _oom_reason(device, config))
            return
        if isinstance(e, LabError):
            yield finished("failed", str(e))
            return
        log.exception("training failed")
        yield finished("failed", f"{type(e).__name__}: {e}")


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, ...]:
    """Fraction correct per class (index = label); classes absent from `labels` get NaN."""
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    total = torch.bincount(labels, minlength=num_classes).double()
    return tuple((correct / total).tolist())

