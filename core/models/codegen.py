"""The code view: a run's config as plain PyTorch a student can paste into a notebook.

`generate(config, num_classes, mean, std)` returns one self-contained script: imports, settings, the model as
an explicit `Net` class with a shape comment per layer (core/models/codegen_models.py; same parameter names as the
lab's model, so a lab checkpoint's weights load into it), torchvision.transforms.v2 augmentation and
normalization, the optimizer, the learning-rate schedule as a `LambdaLR` that reproduces core/train/schedule.py
step for step, the loss, and a minimal training loop that runs under `if __name__ == "__main__":` (so
executing the module in a test builds every object but downloads and trains nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.config import AugmentConfig, OptimConfig, TrainConfig
from core.data.loading import DatasetFacts, dataset_facts
from core.errors import LabError
from core.models.catalog import get_entry
from core.models.codegen_models import model_source
from core.models.registry import IMAGENET_MEAN, IMAGENET_STD
from core.train.schedule import ONECYCLE_END_DIV, ONECYCLE_START_DIV


def _facts(dataset: str) -> DatasetFacts | None:
    """The dataset's facts (core.data.loading.dataset_facts), or None for an image folder that is not one."""
    try:
        return dataset_facts(dataset)
    except LabError:
        return None


def _floats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def _stats(config: TrainConfig, mean: Sequence[float] | None, std: Sequence[float] | None
           ) -> tuple[Sequence[float], Sequence[float], str]:
    if get_entry(config.model.name).input_norm == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD, "ImageNet's statistics: the pretrained weights expect them"
    if mean is not None and std is not None:
        return mean, std, "per-channel statistics of the training images, pixels in [0, 1]"
    facts = _facts(config.data.dataset)
    if facts is not None and facts.mean is not None and facts.std is not None:
        return facts.mean, facts.std, f"{config.data.dataset}'s published training-set statistics"
    return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "PLACEHOLDERS: put your training images' mean/std here"


def _transforms(aug: AugmentConfig, folder: bool) -> list[str]:
    resize = ["    v2.Resize((32, 32), antialias=True),  # the lab decodes folder images to 32×32"] if folder else []
    train = ["    v2.ToImage(),  # PIL image -> (3, H, W) uint8 tensor", *resize]
    if aug.crop_padding:
        mode = "constant" if aug.crop_mode == "zero" else "reflect"
        train.append(f'    v2.RandomCrop(32, padding={aug.crop_padding}, padding_mode="{mode}"),')
    if aug.flip_p:
        train.append(f"    v2.RandomHorizontalFlip(p={aug.flip_p!r}),")
    train.append("    v2.ToDtype(torch.float32, scale=True),  # [0, 1]")
    if aug.brightness or aug.contrast or aug.saturation:
        train.append(f"    v2.ColorJitter(brightness={aug.brightness!r}, contrast={aug.contrast!r}, "
                     f"saturation={aug.saturation!r}),")
    train.append("    v2.Normalize(MEAN, STD),")
    if aug.erase_p:
        area = aug.erase_size ** 2 / 32 ** 2
        train.append(f"    v2.RandomErasing(p={aug.erase_p!r}, scale=({area:.6g}, {area:.6g}), ratio=(1.0, 1.0), "
                     f"value=0),  # a {aug.erase_size}×{aug.erase_size} square; 0 = the mean after Normalize")
    lines = []
    if aug.enabled:
        lines += ["# Augmentation: torchvision equivalents of the lab's batched on-device ops (core/data/augment.py), so",
                  "# approximations - random numbers are drawn differently, ColorJitter applies its three factors",
                  "# in random order (the lab: brightness, contrast, saturation), and RandomErasing keeps the square",
                  "# inside the image (the lab's Cutout square may hang over the edge)."]
    else:
        lines.append("# No augmentation: training images are only normalized.")
    lines += ["train_transform = v2.Compose([", *train, "])",
              "test_transform = v2.Compose([",
              "    v2.ToImage(),", *resize,
              "    v2.ToDtype(torch.float32, scale=True),",
              "    v2.Normalize(MEAN, STD),",
              "])"]
    return lines


def _optimizer(o: OptimConfig, frozen: bool) -> list[str]:
    params = "[p for p in model.parameters() if p.requires_grad]" if frozen else "model.parameters()"
    wd = f", weight_decay={o.weight_decay!r}" if o.weight_decay else ""
    if o.name == "sgd":
        nesterov = ", nesterov=True" if o.nesterov else ""
        line = f"optimizer = torch.optim.SGD({params}, lr=LR, momentum={o.momentum!r}{nesterov}{wd})"
    else:
        cls = "AdamW" if o.name == "adamw" else "Adam"
        if o.name == "adamw":  # torch's AdamW default is 0.01; the lab's config says what it uses
            wd = f", weight_decay={o.weight_decay!r}"
        line = f"optimizer = torch.optim.{cls}({params}, lr=LR{wd})"
    return [("# Adam's weight_decay is an L2 penalty added to the gradient; AdamW decouples it.\n" if
             o.name == "adam" and o.weight_decay else "") + line]


def _schedule(o: OptimConfig) -> list[str]:
    """lr_factor(step) for LambdaLR: the lab's core/schedule.lr_at divided by the peak LR, step by step."""
    body = ['def lr_factor(step: int) -> float:',
            '    """Multiplier of LR before optimizer step `step` (0-based), as CIFAR Lab schedules it."""']
    if o.schedule != "constant" or o.warmup_epochs > 0:
        body.append("    step = min(max(step, 0), TOTAL_STEPS - 1)")
    if o.schedule == "onecycle":
        rise = "WARMUP_STEPS" if o.warmup_epochs > 0 else "int(0.3 * TOTAL_STEPS)"
        body += [f"    rise = {rise}  # one-cycle: rise linearly from 1/{ONECYCLE_START_DIV:g} of the peak ...",
                 f"    start, end = 1 / {ONECYCLE_START_DIV:g}, 1 / {ONECYCLE_END_DIV:g}  # ... then cosine-anneal "
                 f"to 1/{ONECYCLE_END_DIV:g}",
                 "    if step < rise:",
                 "        return start + (1 - start) * step / max(1, rise)",
                 "    t = (step - rise) / max(1, TOTAL_STEPS - 1 - rise)",
                 "    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))"]
    else:
        if o.warmup_epochs > 0:
            body += ["    if step < WARMUP_STEPS:  # linear warm-up",
                     "        return (step + 1) / (WARMUP_STEPS + 1)"]
        if o.schedule == "constant":
            body.append("    return 1.0  # constant learning rate")
        elif o.schedule == "step":
            body.append(f"    return {o.step_gamma!r} ** ((step // STEPS_PER_EPOCH) // {o.step_epochs})"
                        f"  # × {o.step_gamma:g} every {o.step_epochs} epochs")
        else:  # cosine
            body += ["    t = (step - WARMUP_STEPS) / max(1, TOTAL_STEPS - 1 - WARMUP_STEPS)",
                     "    return 0.5 * (1 + math.cos(math.pi * t))  # cosine decay to 0"]
    return body + ["", "", "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)  # step it after "
                           "every optimizer step"]


def _datasets(config: TrainConfig, num_classes: int) -> list[str]:
    name = config.data.dataset
    if name in ("cifar100", "cifar10"):
        cls = "CIFAR100" if name == "cifar100" else "CIFAR10"
        return [f'    train_set = torchvision.datasets.{cls}("data", train=True, download=True, transform=train_transform)',
                f'    test_set = torchvision.datasets.{cls}("data", train=False, download=True, transform=test_transform)']
    if name.startswith("folder:"):
        path = name[len("folder:"):]
        return [f'    train_set = torchvision.datasets.ImageFolder({path + "/train"!r}, transform=train_transform)',
                f'    test_set = torchvision.datasets.ImageFolder({path + "/test"!r}, transform=test_transform)']
    return ["    # The lab's synthetic dataset is its own; random images stand in for it here.",
            f"    train_set = torchvision.datasets.FakeData(TRAIN_SIZE, (3, 32, 32), {num_classes}, train_transform)",
            f"    test_set = torchvision.datasets.FakeData(1000, (3, 32, 32), {num_classes}, test_transform)"]


def _loop(config: TrainConfig, num_classes: int) -> list[str]:
    subset = []
    if config.data.subset:
        subset = [f"    # The lab trains on {config.data.subset:,} images, the same number per class (stratified):",
                  "    per_class = TRAIN_SIZE // NUM_CLASSES",
                  "    targets = torch.tensor(train_set.targets)",
                  "    keep = torch.cat([torch.nonzero(targets == c).flatten()[:per_class] for c in range(NUM_CLASSES)])",
                  "    train_set = torch.utils.data.Subset(train_set, keep.tolist())"]
    return [
        "def train_and_evaluate() -> None:",
        '    """Train for EPOCHS epochs, printing the test accuracy after each."""',
        *_datasets(config, num_classes),
        *subset,
        "    # drop_last: the lab skips a last batch of a single image (batch norm cannot train on one image)",
        "    train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True,",
        "                                               num_workers=2, drop_last=len(train_set) % BATCH_SIZE == 1)",
        "    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1024, num_workers=2)",
        '    use_amp = device.type == "cuda"  # bf16 autocast on a GPU, as the lab does',
        "    for epoch in range(1, EPOCHS + 1):",
        "        model.train()",
        "        for images, labels in train_loader:",
        "            images, labels = images.to(device), labels.to(device)",
        "            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):",
        "                loss = criterion(model(images).float(), labels)",
        "            optimizer.zero_grad(set_to_none=True)",
        "            loss.backward()",
        "            optimizer.step()",
        "            scheduler.step()  # the learning rate changes every step, not every epoch",
        "        model.eval()",
        "        correct = 0",
        "        with torch.no_grad():",
        "            for images, labels in test_loader:",
        "                correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum().item()",
        '        print(f"epoch {epoch}: last loss {loss.item():.3f}, test accuracy {correct / len(test_set):.1%}")',
        "",
        "",
        'if __name__ == "__main__":  # a notebook runs this too: it downloads the data and trains',
        "    train_and_evaluate()",
    ]


def generate(config: TrainConfig, num_classes: int = 100, mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None, train_size: int | None = None) -> str:
    """Plain PyTorch for `config`: model, transforms, optimizer, schedule, loss and a training loop.

    mean/std: the dataset's per-channel statistics (core.data.Dataset.mean/std); ImageNet's for pretrained
    models whatever is passed, CIFAR's published values when omitted. train_size: training images (for the
    schedule's steps per epoch); default the config's subset, else the dataset's training split
    (core.data.loading.dataset_facts; 50,000 for a folder that cannot be listed).
    """
    src = model_source(config.model, num_classes)
    mean, std, stats_note = _stats(config, mean, std)
    if train_size is None:
        facts = _facts(config.data.dataset)
        train_size = config.data.subset or (facts.train_images if facts is not None else 50_000)
    elif config.data.subset:
        train_size = min(train_size, config.data.subset)
    o = config.optim
    frozen = bool(config.model.options.get("freeze_backbone"))
    needs_math = o.schedule in ("cosine", "onecycle")
    imports = sorted({*(["import math"] if needs_math else []), "import torch", "import torch.nn as nn", "import torchvision",
                      "from torchvision.transforms import v2", *src.imports})
    std_lib = [i for i in imports if i in ("import math", "from collections import OrderedDict")]
    third = [i for i in imports if i not in std_lib]
    loss_args = f"label_smoothing={o.label_smoothing!r}" if o.label_smoothing else ""
    lines = [
        '"""CIFAR Lab\'s run as plain PyTorch - paste it into a notebook.',
        "",
        f"Model: {src.note}.",
        f"{config.data.dataset}, {config.epochs} epochs at batch size {config.batch_size}, {o.name} lr {o.lr:g} "
        f"({o.schedule} schedule), augmentation: {config.data.augment.describe()}.",
        '"""',
        "",
        *sorted(std_lib, key=lambda s: (s.startswith("from"), s)),
        "",
        *sorted(third, key=lambda s: (s.startswith("from"), s)),
        "",
        f"NUM_CLASSES = {num_classes}",
        f"BATCH_SIZE = {config.batch_size}",
        f"EPOCHS = {config.epochs}",
        f"LR = {o.lr!r}  # peak learning rate",
        f"SEED = {config.seed}",
        f"TRAIN_SIZE = {train_size}  # training images",
        "STEPS_PER_EPOCH = max(1, TRAIN_SIZE // BATCH_SIZE + (TRAIN_SIZE % BATCH_SIZE > 1))",
        "TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS",
        f"WARMUP_STEPS = min(TOTAL_STEPS - 1, int(round({o.warmup_epochs!r} * STEPS_PER_EPOCH)))",
        f"MEAN = {_floats(mean)}  # {stats_note}",
        f"STD = {_floats(std)}",
        "",
        "",
        src.code,
        "",
        "",
        *_transforms(config.data.augment, config.data.dataset.startswith("folder:")),
        "",
        'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
        "torch.manual_seed(SEED)",
        "model = Net(NUM_CLASSES).to(device)",
        *_optimizer(o, frozen),
        "",
        "",
        *_schedule(o),
        f"criterion = nn.CrossEntropyLoss({loss_args})" + ("  # label smoothing: softer targets" if loss_args else ""),
        "",
        "",
        *_loop(config, num_classes),
    ]
    return "\n".join(lines) + "\n"
