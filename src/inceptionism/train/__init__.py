"""Teach a network your pictures: fine-tune a registered model on a class folder, then dream
with it (``inceptionism train FOLDER -o mynet.pt``, then ``--model mynet.pt``)."""

from __future__ import annotations

from inceptionism.train.data import Augment, Dataset, read_folder, split
from inceptionism.train.loop import EpochReport, TrainConfig, TrainResult, resume_path, train

__all__ = [
    "Augment",
    "Dataset",
    "EpochReport",
    "TrainConfig",
    "TrainResult",
    "read_folder",
    "resume_path",
    "split",
    "train",
]
