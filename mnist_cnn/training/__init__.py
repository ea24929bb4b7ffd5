"""Training: the recipe, the LightningModule, models, data, augmentation, checkpoints, resume, config checks.

`checks`, `resume`, `config` and `datasets` import neither torch nor Lightning, so a bad config
value is refused before those imports start.
"""
