"""Models, data and devices by the names users type, with one registry per family.

``--model`` is resolved by :data:`MODELS` and :data:`MODEL_HUBS`, ``--data`` by :data:`DATA`;
``--help`` and the errors for unknown names are built from them.
"""

from search.sources._data import DATA, DataSource, load_data
from search.sources._devices import device_for
from search.sources._models import (
    MODEL_HUBS,
    MODELS,
    PYTHON_PREFIX,
    ModelHub,
    build_model,
    model_digest,
)
from search.sources._readers import (
    cifar10,
    digit_sums,
    digits,
    from_function,
    imagefolder,
    mnist,
    splits_from,
)
from search.sources._splits import (
    DEFAULT_STREAMING,
    DataSplits,
    Split,
    StreamedSplit,
    Streaming,
    TensorSplit,
    stratified_splits,
)
from search.sources._test_models import TEST_MODELS
from search.sources._weights import checkpoint_digest, load_checkpoint, load_weights
from search.sources._zoo import ZOO

__all__ = ["DATA", "DEFAULT_STREAMING", "DataSource", "DataSplits", "MODELS", "MODEL_HUBS",
           "ModelHub", "PYTHON_PREFIX", "Split", "StreamedSplit", "Streaming", "TEST_MODELS",
           "TensorSplit", "ZOO", "build_model", "checkpoint_digest", "cifar10", "digit_sums",
           "device_for", "digits", "from_function", "imagefolder", "load_checkpoint", "load_data",
           "load_weights", "mnist", "model_digest", "splits_from", "stratified_splits"]
