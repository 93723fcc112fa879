"""micrograd_batch: a scalar autograd engine that shows how backpropagation works on a mini-batch.

The data flow, one module per stage:

    data.py     examples (x, y) and their mini-batches
    nn.py       model(x) builds ONE example's graph of Values   (engine.py: Value, backward)
    norm.py     BatchNorm (couples a batch's examples), LayerNorm (does not)
    losses.py   that example's loss L_i
    batch.py    batch_mean(L_1 ... L_m): one node, local derivative 1/m to each example
    engine.py   loss.backward(): parameter.grad = (1/m) Σ_i dL_i/dθ
    optim.py    optimiser.step(), zero_grad()
    train.py    the loop over epochs and mini-batches
    viz.py      graphs to graphviz / SVG, one cluster per example (import micrograd_batch.viz)
    persist.py  models saved to and loaded from JSON, exactly and atomically
    parallel.py a batch's examples split over worker processes, gradients averaged
    compile.py  one example's graph traced once -> straight-line Python, run for every example

The course (lessons, the δ recursion by hand, charts) lives in `micrograd_batch.lessons`;
it imports the library, never the other way round.
"""

from .batch import batch_mean, batch_sum, clip_per_example, mean_of, per_example_grads
from .compile import CompiledLoss, NotCompilable, compile_loss
from .engine import Op, Value, gc_paused, logsumexp, topological_order, weighted_sum
from .data import make_blobs, make_moons, minibatches
from .losses import bce_with_logits, hinge, l2_penalty, mse, softmax_cross_entropy
from .nn import MLP, Layer, Module, Neuron
from .norm import BatchNorm, LayerNorm
from .optim import SGD, Adam, Optimizer
from .parallel import DataParallel, WorkerDied
from .persist import ModelFileError, load_checkpoint, load_model, load_parameters_into, save_checkpoint, save_model
from .metrics import accuracy
from .train import History, TrainingDiverged, fit

__all__ = [
    "Value",
    "Op",
    "topological_order",
    "weighted_sum",
    "logsumexp",
    "gc_paused",
    "batch_mean",
    "batch_sum",
    "per_example_grads",
    "mean_of",
    "clip_per_example",
    "Module",
    "Neuron",
    "Layer",
    "MLP",
    "BatchNorm",
    "LayerNorm",
    "mse",
    "hinge",
    "bce_with_logits",
    "softmax_cross_entropy",
    "l2_penalty",
    "Optimizer",
    "SGD",
    "Adam",
    "minibatches",
    "make_moons",
    "make_blobs",
    "fit",
    "accuracy",
    "History",
    "TrainingDiverged",
    "DataParallel",
    "WorkerDied",
    "save_model",
    "load_model",
    "load_parameters_into",
    "ModelFileError",
    "compile_loss",
    "CompiledLoss",
    "NotCompilable",
    "save_checkpoint",
    "load_checkpoint",
]

__version__ = "0.2.0"
