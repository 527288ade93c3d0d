"""Looking inside a trained network: Captum attributions, filters and feature maps, predictions, the
randomization sanity check, confusion analysis, activation statistics, PNG figures and ensembles of runs.
"""

from __future__ import annotations

from core.explain.activations import (  # noqa: F401
    pre_activations,
    summary,
)
from core.explain.attribution import (  # noqa: F401
    ALIASES,
    BASELINES,
    COMMON_DEFAULTS,
    METHODS,
    SIGNS,
    Attribution,
    MethodInfo,
    Progress,
    as_batch,
    attribute,
    counting,
    default_chunk,
    display_map,
    explaining,
    gaussian_blur,
    ig_baseline,
    internal_size,
    model_device,
    resolve_method,
)
from core.explain.confusion import (  # noqa: F401
    ConfusedPair,
    Mistakes,
    PairRow,
    coarse_confusion,
    confusion_matrix,
    misclassified,
    most_confused_pairs,
    predict_split,
    rank_mistakes,
)
from core.explain.ensemble import (  # noqa: F401
    EnsembleResult,
    MemberInfo,
    check_compatible,
    check_logits,
    ensemble_accuracy,
    ensemble_from_checkpoints,
    ensemble_probs,
    gain_curve,
    member_info,
    members_accuracy,
    run_logits,
)
from core.explain.features import (  # noqa: F401
    CoarseMap,
    FeatureMaps,
    Guess,
    RunModel,
    class_probs,
    coarse_map,
    feature_layers,
    feature_maps,
    first_layer_filters,
    fresh_model,
    layer_filters,
    load_run_model,
    predict,
    run_checkpoint,
    scale_per_filter,
    superclass_probs,
    top_superclasses,
)
from core.explain.figures import (  # noqa: F401
    COLORMAPS,
    PANEL,
    colorize,
    colormap_lut,
    compose,
    explanation_figure,
    feature_maps_figure,
    filters_figure,
    overlay,
    sanity_figure,
    save_png,
    stack_rows,
    tile_grid,
    upscale,
)
from core.explain.sanity import (  # noqa: F401
    FLAG_ABOVE,
    PASS_BELOW,
    SanityResult,
    SanityStep,
    average_ranks,
    judge,
    pearson,
    randomization_units,
    rank_correlation,
    sanity_check,
    ssim,
)
