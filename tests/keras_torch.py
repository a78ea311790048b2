"""Keras 3 on its torch backend, for the tests that build Keras's own networks: import this
before anything imports keras (it picks the backend), and mark the test module with
``KERAS_MARKS``. Skips the importing module where keras is not installed."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest  # noqa: E402

keras = pytest.importorskip("keras")
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

KERAS_MARKS = [
    pytest.mark.skipif(
        keras.backend.backend() != "torch", reason="KERAS_BACKEND was set to another backend"
    ),
    pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning"),
    # Keras's torch backend calls np.array(x) on tensors: numpy 2 warns at every call
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

__all__ = ["KERAS_MARKS", "keras", "legacy_h5_format"]
