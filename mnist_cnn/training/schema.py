"""The schema of a run's config: every key's type, range or allowed values, and what it is.

pydantic checks the whole composed config in one pass, before anything is built or written and
without importing torch; `checks.check_config` turns its first complaint into one line naming the
key. Each option's longer documentation stays in the comments of its YAML under conf/.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from mnist_cnn.errors import UserError
from mnist_cnn.training.choices import AUGMENTATIONS, PROGRESS_STYLES, STEMS
from mnist_cnn.training.datasets import CATALOGUE, EMNIST_CLASSES

DATA_SETS = tuple(CATALOGUE)
EMNIST_SPLITS = tuple(EMNIST_CLASSES)


def described(description: str, **limits: Any) -> Any:
    return Field(description=description, **limits)


Count = Annotated[int, described("a whole number >= 1", ge=1)]
Fraction = Annotated[float, described("a number from 0 to 1", ge=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Target = Annotated[str, Field(alias="_target_", description="the class or function this node builds")]


class Strict(BaseModel):
    """No coercion (a word is not a number, true is not 1) and no keys the code would not read."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class AugmentStrength(Strict):
    shift: Annotated[float, described("max translation in pixels", ge=0, le=14, allow_inf_nan=False)]
    rotate: Annotated[float, described("max rotation in degrees", ge=0, le=180, allow_inf_nan=False)]
    scale: Annotated[float, described("max relative zoom", ge=0, le=0.9, allow_inf_nan=False)]
    thickness: Annotated[
        float, described("chance of thicker strokes, and of thinner", ge=0, le=0.5, allow_inf_nan=False)
    ]
    low_resolution: Annotated[Fraction, described("chance of a digit shrunk to 8-14 px and enlarged back")]
    blur: Annotated[float, described("max Gaussian blur sigma in pixels", ge=0, le=5, allow_inf_nan=False)]
    contrast: Annotated[Fraction, described("max fading of the ink")]
    noise: Annotated[Fraction, described("max noise, as a fraction of the ink's contrast")]


Statistic = Annotated[float, Field(allow_inf_nan=False)] | list[Annotated[float, Field(allow_inf_nan=False)]] | None


class DataSettings(Strict):
    name: Annotated[Literal[DATA_SETS], described("the data set")] = "mnist"
    split: Annotated[Literal[EMNIST_SPLITS] | None, described("EMNIST's split")] = None
    extra: Annotated[bool, described("SVHN's extra training images")] = False
    root: Annotated[str, described("where the data set's files live or are downloaded to", min_length=1)]
    download: Annotated[bool, described("download into root when the files are missing")]
    batch_size: Annotated[Count, described("training batch size")]
    eval_batch_size: Annotated[Count, described("validation and test batch size")]
    val_size: Annotated[Count, described("validation images taken from the training set")]
    mean: Annotated[Statistic, described("normalization mean, one per channel or for all (null: measured)")]
    std: Annotated[Statistic, described("normalization standard deviation (null: measured)")]

    @field_validator("std")
    @classmethod
    def positive_spread(cls, std: float | list[float] | None) -> float | list[float] | None:
        if any(value <= 0 for value in (std if isinstance(std, list) else [] if std is None else [std])):
            raise ValueError("should be greater than 0")
        return std

    augment: Annotated[Literal[AUGMENTATIONS], described("batch augmentation during training")]
    augment_strength: AugmentStrength
    outliers: Annotated[Fraction, described("share of each training batch added as non-digits made from its digits")]


Dropout = Annotated[float, described("dropout rate before the classifier", ge=0, lt=1, allow_inf_nan=False)]


class SeedFamily(Strict):
    target: Annotated[
        Literal[
            "mnist_cnn.training.models.Primitive",
            "mnist_cnn.training.models.CNN1",
            "mnist_cnn.training.models.CNN2",
            "mnist_cnn.training.models.CNN3",
        ],
        Field(alias="_target_"),
    ]
    dropout: Dropout


class FastCNN(Strict):
    target: Annotated[Literal["mnist_cnn.training.models.FastCNN"], Field(alias="_target_")]
    dropout: Dropout
    width: Annotated[int, described("channels of the first block", ge=1, le=1024)]
    convs_per_block: Annotated[int, described("convolutions in the second and third blocks", ge=1, le=16)]
    stem: Annotated[Literal[STEMS], described("the first block")]


LearningRate = Annotated[float, described("learning rate", gt=0, allow_inf_nan=False)]
WeightDecay = Annotated[float, described("L2 penalty", ge=0, allow_inf_nan=False)]


class Adam(Strict):
    target: Annotated[Literal["torch.optim.Adam"], Field(alias="_target_")]
    partial: Annotated[Literal[True], Field(alias="_partial_")]
    lr: LearningRate
    weight_decay: WeightDecay


class SGD(Strict):
    target: Annotated[Literal["torch.optim.SGD"], Field(alias="_target_")]
    partial: Annotated[Literal[True], Field(alias="_partial_")]
    lr: LearningRate
    momentum: Annotated[float, described("heavy-ball momentum", ge=0, lt=1, allow_inf_nan=False)]
    nesterov: Annotated[bool, described("Nesterov momentum (needs momentum > 0)")]
    weight_decay: WeightDecay

    @model_validator(mode="after")
    def nesterov_needs_momentum(self) -> SGD:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=true needs momentum > 0")
        return self


SchedulePartial = Annotated[Literal[True], Field(alias="_partial_")]


class OneCycle(Strict):
    target: Annotated[Literal["mnist_cnn.training.schedules.one_cycle"], Field(alias="_target_")]
    partial: SchedulePartial
    max_lr: Annotated[float, described("peak learning rate", gt=0, allow_inf_nan=False)]
    pct_start: Annotated[float, described("fraction of the run spent warming up", gt=0, lt=1, allow_inf_nan=False)]
    div_factor: Annotated[float, described("start at max_lr / div_factor", gt=0, allow_inf_nan=False)]
    final_div_factor: Annotated[float, described("end at start / final_div_factor", gt=0, allow_inf_nan=False)]


class Cosine(Strict):
    target: Annotated[Literal["mnist_cnn.training.schedules.cosine"], Field(alias="_target_")]
    partial: SchedulePartial
    eta_min: Annotated[float, described("final learning rate", ge=0, allow_inf_nan=False)]


class StepDecay(Strict):
    target: Annotated[Literal["mnist_cnn.training.schedules.step_decay"], Field(alias="_target_")]
    partial: SchedulePartial
    step_size: Annotated[Count, described("epochs between decays")]
    gamma: Annotated[float, described("decay factor", gt=0, le=1, allow_inf_nan=False)]


class NoSchedule(Strict):
    """scheduler=none: an empty node."""


def schedule_kind(node: Any) -> str:
    """The scheduler node's `_target_`, or "none" for the empty node."""
    target = node.get("_target_") if isinstance(node, dict) else getattr(node, "target", None)
    return target or "none"


Schedule = Annotated[
    Annotated[OneCycle, Tag("mnist_cnn.training.schedules.one_cycle")]
    | Annotated[Cosine, Tag("mnist_cnn.training.schedules.cosine")]
    | Annotated[StepDecay, Tag("mnist_cnn.training.schedules.step_decay")]
    | Annotated[NoSchedule, Tag("none")],
    Discriminator(schedule_kind),
]


BatchLimit = Annotated[int | Fraction, Field(description="batches (a whole number) or a fraction of them", ge=0)]


class TrainerSettings(Strict):
    """Lightning Trainer arguments; any other argument of `Trainer` may be added with +trainer.<name>=."""

    model_config = ConfigDict(strict=True, extra="allow")
    accelerator: Annotated[Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"], described("where to train")]
    devices: Annotated[int | Literal["auto"] | list[int], described("devices: a count, -1 for all, or a list")]
    strategy: Annotated[
        Literal["auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "ddp_find_unused_parameters_true", "fsdp"],
        described("how to spread training over devices"),
    ]
    precision: Annotated[
        Literal["32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true", "64", "16", "bf16"]
        | Literal[16, 32, 64],
        described("numeric precision"),
    ]
    max_epochs: Annotated[Count, described("epochs to train")]
    deterministic: Annotated[bool, described("bit-identical runs for the same seed")]
    log_every_n_steps: Annotated[Count, described("how often per-step scalars are logged")]
    num_sanity_val_steps: Annotated[int, described("validation batches before training (-1: all)", ge=-1)]
    gradient_clip_val: Annotated[float | None, described("gradient norm clip (null: off)", ge=0, allow_inf_nan=False)]
    enable_model_summary: Annotated[bool, described("Lightning's summary table")]
    fast_dev_run: Annotated[bool | Count, described("a smoke test of one (or N) batches")] = False
    limit_train_batches: BatchLimit = 1.0
    limit_val_batches: BatchLimit = 1.0
    limit_test_batches: BatchLimit = 1.0
    overfit_batches: BatchLimit = 0.0

    @model_validator(mode="after")
    def only_trainer_arguments(self) -> TrainerSettings:
        unknown = sorted(set(self.model_extra or {}) - trainer_arguments())
        if unknown:
            raise ValueError(
                f"{unknown[0]} is not an argument of Lightning's Trainer (+trainer.<argument>= passes one)"
            )
        return self

    @model_validator(mode="after")
    def devices_are_counted(self) -> TrainerSettings:
        if isinstance(self.devices, int) and (self.devices == 0 or self.devices < -1):
            raise ValueError("devices must be a count >= 1, -1 (all), auto or a list of device numbers")
        return self


@cache
def trainer_arguments() -> frozenset[str]:
    """The keyword arguments of Lightning's `Trainer`, read from its source so that torch is not imported."""
    spec = importlib.util.find_spec("pytorch_lightning")
    source = Path(next(iter(spec.submodule_search_locations))) / "trainer" / "trainer.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == "Trainer":
            init = next(item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__")
            return frozenset(arg.arg for arg in [*init.args.args, *init.args.kwonlyargs] if arg.arg != "self")
    raise RuntimeError(f"no Trainer class in {source}")


class Node(BaseModel):
    """A logger or callback node: its target and the arguments passed to it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    target: Annotated[str, Field(alias="_target_", pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")]


class BestCheckpoint(Node):
    monitor: Annotated[str, described("the logged metric that decides the best checkpoint", min_length=1)]
    mode: Annotated[Literal["min", "max"], described("whether higher or lower is better")]
    save_top_k: Annotated[int, described("best checkpoints kept (-1: all)", ge=-1)]


class Progress(Node):
    style: Annotated[Literal[PROGRESS_STYLES], described("a bar on a terminal, log lines otherwise")] = "auto"
    every_seconds: Annotated[
        float, described("seconds between progress lines (0: every step)", ge=0, allow_inf_nan=False)
    ] = 30.0


class Figures(Node):
    every_n_epochs: Annotated[int, described("epochs between figures (the last epoch always has them)", ge=1)] = 1


class Callbacks(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Node | None]
    best_checkpoint: BestCheckpoint | None = None
    progress: Progress | None = None
    figures: Figures | None = None


class Speed(Strict):
    channels_last: Annotated[bool, described("NHWC weights and batches")]
    compile: Annotated[bool, described("torch.compile the network")]


class RunConfig(Strict):
    data: DataSettings
    model: Annotated[SeedFamily | FastCNN, Field(discriminator="target")]
    optim: Annotated[Adam | SGD, Field(discriminator="target")]
    scheduler: Schedule
    trainer: TrainerSettings
    logger: dict[str, Node | None] = {}
    callbacks: Callbacks
    speed: Speed
    seed: Annotated[int, described("seeds every random choice", ge=0, lt=2**32)]
    resume: Annotated[str | None, described("a run directory to continue", min_length=1)]
    init_from: Annotated[str | None, described("a run directory or checkpoint to start from", min_length=1)] = None
    continue_from: Annotated[
        str | None, described("a finished run whose training this run continues", min_length=1)
    ] = None


def validate(config: dict[str, Any]) -> None:
    """Raise a one-line UserError for the first key the schema refuses."""
    try:
        RunConfig.model_validate(config)
    except ValidationError as invalid:
        raise UserError(first_complaint(invalid, config)) from None


def first_complaint(invalid: ValidationError, config: dict[str, Any]) -> str:
    """`optim.lr=0 is invalid: should be greater than 0`, from pydantic's first error (all of a union's kinds)."""
    errors = invalid.errors(include_url=False)
    key, value = config_key(errors[0]["loc"], config)
    kind = errors[0]["type"]
    if kind == "extra_forbidden":
        return f"{key} is not a key of this config: remove it (each option's keys are in its YAML under conf/)"
    if kind == "missing":
        return f"{key} is missing: the config was edited or comes from another version; compose it again"
    if kind == "union_tag_invalid":
        tag = errors[0]["ctx"]["tag"]
        return f"{key}._target_={tag} is not one of this project's {key} options: choose {key}=<option> (see --help)"
    reasons = [error["msg"].removeprefix("Input ") for error in errors if config_key(error["loc"], config)[0] == key]
    if kind == "value_error" and isinstance(value, dict):  # a check across a section's keys
        return f"{key}: {reasons[0].removeprefix('Value error, ')}"
    reasons = [reason.removeprefix("Value error, ") for reason in reasons]
    shown = f"{value!r}" if isinstance(value, str) else str(value)
    return f"{key}={shown} is invalid: {'; or '.join(dict.fromkeys(reasons))}"


def config_key(location: tuple, config: dict[str, Any]) -> tuple[str, Any]:
    """The dotted key pydantic's error location points at, and its value: the union members' names left out."""
    path, node = [], config
    for part in location:
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
    return ".".join(path), node
