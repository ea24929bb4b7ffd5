"""A run's hyperparameters and final metrics, for TensorBoard's HParams tab and every other logger.

TensorBoard ticks the first five hyperparameters of its table, sorted with the ones marked
`differs` first (tensorboard/plugins/hparams/backend_context.py). torch's `add_hparams` marks none,
so the tab used to open on five alphabetical settings that no job changed. Each run here writes its
own experiment summary instead: the keys a sweep varies (or a single run's command line set) are
marked as differing, so they are the columns shown; the metric columns are the final figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName
from tensorboard.plugins.hparams.metadata import EXPERIMENT_TAG, PLUGIN_DATA_VERSION, PLUGIN_NAME
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard.summary import hparams as session_summaries

# Sections whose settings are hyperparameters worth comparing across runs.
HPARAM_SECTIONS = ("model", "optim", "scheduler", "data")
# Settings that change where or how fast a run goes, not what it learns.
NOT_HYPERPARAMETERS = {"data.root", "data.download", "data.eval_batch_size"}
# The metric columns: scalars each run logs, read by TensorBoard at their last step.
FINAL_METRICS = ("val/acc_best", "test/acc", "test/loss", "train/acc")


def flat_hparams(cfg: DictConfig, choices: Mapping[str, str]) -> dict[str, Any]:
    """The chosen group options plus every setting that changes what is learned, flat.

    Left out: `_target_` and `_partial_` (the choice names them), paths and switches that change
    no result, and augmentation strengths when nothing is augmented.
    """
    params: dict[str, Any] = {group: choice for group, choice in choices.items() if group in HPARAM_SECTIONS}
    values = {f"{section}.{key}": value for section in HPARAM_SECTIONS for key, value in flat(cfg[section]).items()}
    for key, value in values.items():
        if key in NOT_HYPERPARAMETERS or key.rsplit(".", 1)[-1].startswith("_"):
            continue
        if key.startswith("data.augment_strength.") and cfg.data.augment == "none":
            continue
        params[key] = value
    params["trainer.max_epochs"] = cfg.trainer.max_epochs
    params["seed"] = cfg.seed
    return params


def flat(node: DictConfig) -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`, scalars only."""
    values = {}
    for key, value in OmegaConf.to_container(node, resolve=True).items():
        if isinstance(value, dict):
            values.update({f"{key}.{inner}": item for inner, item in flat(OmegaConf.create(value)).items()})
        elif isinstance(value, (int, float, str, bool)):
            values[key] = value
    return values


def in_display_order(hparams: Mapping[str, Any], differing: Iterable[str]) -> dict[str, Any]:
    """The differing hyperparameters first (a group option `optim` for a swept `optim=sgd,adam`)."""
    first = [key for key in differing if key in hparams]
    return {key: hparams[key] for key in [*first, *(key for key in hparams if key not in first)]}


def overridden_keys(overrides: Iterable[str]) -> list[str]:
    """The keys a command line set (`model=cnn3 +optim.lr=0.1` -> model, optim.lr): a single run's differing ones."""
    return [line.lstrip("+~").partition("=")[0] for line in overrides]


def data_type(value: Any) -> DataType:
    if isinstance(value, bool):
        return DataType.DATA_TYPE_BOOL
    return DataType.DATA_TYPE_FLOAT64 if isinstance(value, (int, float)) else DataType.DATA_TYPE_STRING


def experiment_summary(hparams: Mapping[str, Any], differing: set[str]) -> Summary:
    """TensorBoard's experiment: the hyperparameters (differing ones marked) and FINAL_METRICS as columns."""
    experiment = Experiment(
        hparam_infos=[
            HParamInfo(name=key, type=data_type(value), differs=key in differing) for key, value in hparams.items()
        ],
        metric_infos=[MetricInfo(name=MetricName(tag=tag)) for tag in FINAL_METRICS],
    )
    content = HParamsPluginData(experiment=experiment, version=PLUGIN_DATA_VERSION).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content))
    return Summary(value=[Summary.Value(tag=EXPERIMENT_TAG, metadata=metadata)])


def log_final_results(
    loggers: list[Logger], hparams: dict[str, Any], differing: Iterable[str], metrics: dict[str, Any], step: int
) -> None:
    """The hyperparameters once, with the final metrics as scalars at the last step, to every logger."""
    differing = [key for key in differing if key in hparams]
    ordered = in_display_order(hparams, differing)
    scores = {"test/acc": metrics["test/acc"], "test/loss": metrics["test/loss"]}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()  # Lightning's own log_hyperparams writes the same way
            _, session_start, session_end = session_summaries(ordered, {})
            for summary in (experiment_summary(ordered, set(differing)), session_start, session_end):
                writer.add_summary(summary)
        else:
            logger.log_hyperparams(ordered)
        logger.log_metrics(scores, step=step)
        logger.save()
