"""Data: the `Dataset` type (uint8 tensors + labels + class names + mean/std), CIFAR-100/10 from the official
pickles (download, verify, unpack), image folders, the synthetic set, stratified subsets, batched augmentation
on the device and outside pictures (uploads) turned into 32x32 images.

modules: dataset (type, caches, subsets), cifar, folder, synthetic, loading (by name), augment, images.
"""
