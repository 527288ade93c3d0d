"""The whole training step - forward, loss, backward, optimizer - captured once as a CUDA graph and replayed.

Why: a small network's step on a GPU is launch-bound (the report's base CNN: ~3.4 ms of kernel launches around
~50 µs of arithmetic on an H200, docs/PERFORMANCE.md). A replayed graph launches the step's ~80 kernels as one.

How (torch.cuda.graphs by hand, the "whole network capture" recipe):
  static input buffers (B, 3, H, W) and (B,) that every full batch is copied into - the batch itself is still
  drawn, augmented and normalized on the device by core.train.batches, outside the graph, so the data order and
  augmentation stream are exactly the eager run's (resume and exact-repeat unchanged);
  a few eager warm-up steps on a side stream (cuDNN and cuBLAS pick their algorithms, the allocator settles),
  then the capture; the warm-up steps are undone afterwards (weights, buffers, optimizer state, RNG restored in
  place), so the run trains exactly the steps it would have;
  the learning rate lives in a device tensor the graph reads (set_lr fills it before each step), so the schedule
  still applies; the optimizer is made `capturable` for the capture;
  the last, partial batch of an epoch (50,000 images in batches of 256 leave 80) runs eagerly on the same
  parameters, gradients and optimizer state (`fits`).
If anything in the capture fails (an optimizer without a capturable path, an op that cannot be captured, no CUDA at
all) the run trains eagerly from the same state and says why once. Tests force that path on the CPU by adding
"cpu" to GRAPH_DEVICES, as they force the torch.compile fall-back (core.train.engine.COMPILE_DEVICES).
Evaluation is not graphed: it is forward-only in batches of 1,024 (1-4% of an epoch on the H200) - see
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn as nn

from core.config import TrainConfig

# Devices where config.cuda_graphs applies; tests add "cpu" to drive the capture-and-fall-back path.
GRAPH_DEVICES: tuple[str, ...] = ("cuda",)
WARMUP_STEPS = 3  # eager steps before the capture (side stream on CUDA), undone afterwards



def wants_graphs(config: TrainConfig, device: torch.device) -> bool:
    """Whether a run of `config` on `device` captures its training step."""
    return bool(getattr(config, "cuda_graphs", False)) and device.type in GRAPH_DEVICES


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate; a device tensor (a graphed step reads it) is filled in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)  # a kernel, not a host sync
        else:
            group["lr"] = lr


class Snapshot:
    """Weights, buffers, optimizer state and RNG before the warm-up, put back in place (same tensors: the graph
    keeps their addresses). State the warm-up created is zeroed: for Adam (step 0, zero moments) and SGD
    (a zero momentum buffer, no dampening) that is exactly a fresh optimizer's first step."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        self.tensors = [(t, t.detach().clone()) for t in (*model.parameters(), *model.buffers())]
        self.state = {id(p): {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
                      for p, s in optimizer.state.items()}
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, *,
                rng: bool) -> None:
        with torch.no_grad():
            for t, saved in self.tensors:
                t.copy_(saved)
            for p, s in optimizer.state.items():
                before = self.state.get(id(p), {})
                for k, v in s.items():
                    if isinstance(v, torch.Tensor) and k in before:
                        v.copy_(before[k])
                    elif isinstance(v, torch.Tensor):
                        v.zero_()
                    elif k in before:
                        s[k] = before[k]
        torch.set_rng_state(self.cpu_rng)
        if rng and self.cuda_rng is not None:  # after a successful capture the graph owns the CUDA generator
            torch.cuda.set_rng_state(self.cuda_rng, device)


class GraphedStep:
    """`step(x, y) -> (logits, loss)`: one whole optimizer step, captured on the first full batch and replayed
    after; `fits(x)` says whether a batch can take the graph (False: run the step eagerly, or the capture
    failed). `note` holds the one-line reason after a failed capture, until the engine reports it."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 device: torch.device, batch_size: int, *, bf16: bool) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.device, self.batch_size, self.bf16 = device, batch_size, bf16
        self.graph: Any = None  # torch.cuda.CUDAGraph once captured
        self.failed = False
        self.note: str | None = None
        self._x = self._y = self._logits = self._loss = None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def fits(self, x: torch.Tensor) -> bool:
        return not self.failed and x.shape[0] == self.batch_size

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Train on (x, y) through the graph; None when the capture failed (nothing was trained: step eagerly)."""
        if self.graph is None and not self._capture(x, y):
            return None
        self._x.copy_(x)
        self._y.copy_(y)
        self.graph.replay()
        return self._logits, self._loss

    def zero_grad(self) -> None:
        """For an eager step between replays: zero the gradients in place (the graph owns their memory)."""
        self.optimizer.zero_grad(set_to_none=not self.captured)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The engine's forward pass and float32 loss; autocast's weight-cast cache off, as graph capture needs
        (a cached cast would be freed when the context closes, under the graph's feet)."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                            cache_enabled=False):
            logits = self.model(x)  # (B, C)
            loss = self.criterion(logits.float(), y)
        return logits, loss

    def body(self) -> None:
        """One step on the static buffers: what is captured, and what a warm-up step runs. Zeroing the gradients
        in place first makes every run of it write (not add to) the same gradient tensors."""
        self.optimizer.zero_grad(set_to_none=False)
        self._logits, self._loss = self.forward(self._x, self._y)
        self._loss.backward()
        self.optimizer.step()

    def new_graph(self) -> Any:
        return torch.cuda.CUDAGraph()

    def capturing(self, graph: Any) -> contextlib.AbstractContextManager:
        return torch.cuda.graph(graph)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        model, opt, device = self.model, self.optimizer, self.device
        snapshot = Snapshot(model, opt, device)
        captured = False
        try:
            self._x, self._y = x.clone(), y.clone()
            if device.type == "cuda":
                for group in opt.param_groups:  # capturable: the step counter and lr stay on the device
                    group["capturable"] = True
                    if not isinstance(group["lr"], torch.Tensor):
                        group["lr"] = torch.tensor(float(group["lr"]), device=device)
            side = torch.cuda.Stream(device) if device.type == "cuda" else None
            if side is not None:
                side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
                for _ in range(WARMUP_STEPS):
                    self.body()
            if side is not None:
                torch.cuda.current_stream(device).wait_stream(side)
            graph = self.new_graph()
            with self.capturing(graph):
                self.body()
            self.graph, captured = graph, True
        except Exception as e:  # noqa: BLE001 - graphs are an optimization; eager always works
            self.failed, self.graph = True, None
            self._x = self._y = self._logits = self._loss = None
            first_line = (str(e).splitlines() or [""])[0][:200]
            self.note = f"CUDA graph capture failed ({type(e).__name__}: {first_line}); training without it"
        finally:
            snapshot.restore(model, opt, device, rng=not captured)
        return captured


def plain_groups(optimizer: torch.optim.Optimizer) -> None:
    """Undo what a capture set on an optimizer restored from a checkpoint: a float learning rate and no
    `capturable` (a capturable optimizer refuses CPU parameters; a capture sets it again where it applies)."""
    for group in optimizer.param_groups:
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"])
        if group.get("capturable"):
            group["capturable"] = False
