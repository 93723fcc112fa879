"""micrograd_batch: a scalar autograd engine that shows how backpropagation works on a mini-batch.

Each example builds its own graph of Values (nn.py, engine.py); batch_mean (batch.py) joins the m
per-example losses in ONE node whose local derivative to each is 1/m, so one backward() leaves
(1/m) Σ_i ∂L_i/∂θ in every parameter. The course lives in `micrograd_batch.lessons` and imports
the library, never the other way round. The layout and the public API: docs/api.md.
"""

from .batch import batch_mean, batch_sum, clip_per_example, per_example_grads
from .compile import NotCompilable, compile_loss
from .data import make_moons, minibatches
from .engine import Value
from .losses import bce_with_logits, hinge, mse, softmax_cross_entropy
from .metrics import accuracy
from .nn import MLP, Layer, Module, Neuron
from .norm import BatchNorm, LayerNorm
from .optim import SGD, Adam
from .parallel import DataParallel, WorkerDied
from .persist import ModelFileError, load_model, save_model
from .train import History, TrainingDiverged, fit

__all__ = [
    "Value", "batch_mean", "batch_sum", "per_example_grads", "clip_per_example",
    "Module", "Neuron", "Layer", "MLP", "BatchNorm", "LayerNorm",
    "mse", "hinge", "bce_with_logits", "softmax_cross_entropy", "SGD", "Adam",
    "make_moons", "minibatches", "fit", "accuracy", "History", "TrainingDiverged",
    "DataParallel", "WorkerDied", "compile_loss", "NotCompilable", "save_model", "load_model", "ModelFileError",
]

__version__ = "0.3.0"
