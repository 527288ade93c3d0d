"""Data: the `Dataset` type (uint8 tensors + labels + class names + mean/std), CIFAR-100/10 from the official
pickles (download, verify, unpack), image folders, the synthetic set, stratified subsets, batched augmentation
on the device and outside pictures (uploads) turned into 32x32 images.

The function `augment` stays in its module (`core.data.augment.augment`): re-exported here it would hide
the module of the same name.

modules: dataset (type, caches, subsets), cifar, folder, synthetic, loading (by name), augment, images.
"""

from __future__ import annotations

from core.data.augment import (  # noqa: F401
    GRAY_WEIGHTS,
    AugmentParams,
    apply_crop,
    apply_erase,
    apply_flip,
    apply_jitter,
    erase_boxes,
    make_generator,
    normalize,
    pad_images,
    sample_params,
    train_batch,
)
from core.data.cifar import (  # noqa: F401
    CIFAR_CACHE_NAME,
    DOWNLOAD_CHUNK,
    SPECS,
    CifarSpec,
    cifar_status,
    download,
    load_cifar,
)
from core.data.dataset import (  # noqa: F401
    CACHE_VERSION,
    Dataset,
    DatasetStatus,
    Progress,
    channel_stats,
    clear_memory_cache,
    data_root,
    load_cache,
    memoized,
    save_cache,
    stratified_subset,
    subset_size,
)
from core.data.folder import (  # noqa: F401
    CACHE_NAME,
    CHUNK,
    FAST_JPEG_BYTES,
    IMAGE_EXTENSIONS,
    SIZE,
    Listing,
    folder_status,
    load_folder,
)
from core.data.images import (  # noqa: F401
    MAX_PIXELS,
    MIN_SIDE,
    decode_image,
    read_image_file,
)
from core.data.loading import (  # noqa: F401
    FOLDER_PREFIX,
    dataset_status,
    load,
    load_dataset,
)
from core.data.synthetic import (  # noqa: F401
    SYNTHETIC_CLASSES,
    SYNTHETIC_SEED,
    make_synthetic,
)
