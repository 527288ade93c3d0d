"""Models: the registry (`register_model` / `build_model` / `list_models`), the zoo it holds (mlp, cnn, resnet9,
resnet18, ImageNet ResNet18 / MobileNetV2), the `custom` CNN builder with its analytic summary, and code
generation (the plain PyTorch of any config).

Importing this package fills the registry: zoo.py and builder.py register their models on import, and
registry.py itself imports neither (a leaf).
"""

# The zoo registers its models before the builder's `custom`, and list_models keeps that order.
# isort: skip_file
from __future__ import annotations

from core.models.registry import (  # noqa: F401
    CIFAR_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_NORMS,
    ModelEntry,
    build_for_config,
    build_model,
    conv_layers,
    count_params,
    get_entry,
    head_parameters,
    last_conv,
    list_models,
    model_size,
    register_model,
    unwrap,
)
from core.models.resnet import (  # noqa: F401
    BasicBlock,
    FrozenBackboneMixin,
    Residual,
    Resize,
    ResNet,
    ResNet9,
    conv_bn,
)
from core.models.zoo import (  # noqa: F401
    CNN,
    MLP,
    MobileNetV2Resized,
    cnn,
    mlp,
    mobilenet_v2_imagenet,
    resnet9,
    resnet18,
    resnet18_imagenet,
)
from core.models.layers import (  # noqa: F401
    ACTIVATIONS,
    FC_OPTIONS,
    LAYER_OPTIONS,
    MAX_LAYER_PARAMS,
    POOL_MODES,
    check_fc,
    check_values,
    fill,
    is_int,
    is_num,
    layer_math,
    maker,
    one_of,
    out_size,
    too_big,
)
from core.models.builder import (  # noqa: F401
    DEFAULT_FC,
    DEFAULT_LAYERS,
    CustomCNN,
    LayerError,
    LayerRow,
    Summary,
    custom,
    normalize_spec,
    spec_from_preset,
    summarize,
)
from core.models.codegen_models import (  # noqa: F401
    ModelSource,
    model_source,
)
from core.models.codegen import (  # noqa: F401
    generate,
)
