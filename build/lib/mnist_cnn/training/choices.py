"""The allowed values of the config's choice keys, shared by the checks and the code that acts on them.

Kept free of torch so `checks` can refuse a bad value before torch is imported.
"""

STEMS = ("pool", "strided")  # model.stem of FastCNN
AUGMENTATIONS = ("none", "shift", "affine", "wild")  # data.augment
PROGRESS_STYLES = ("auto", "bar", "log")  # callbacks.progress.style
