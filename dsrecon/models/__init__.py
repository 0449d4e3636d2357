"""Models on the shared :class:`~dsrecon.models.base.Model` interface, one architecture per module.

``MODELS`` maps the names used by the config and the CLI to the classes; every class is rebuilt from its
``hparams`` (``MODELS[kind](**model.hparams)``).
"""
from .base import Model, autograd_jacobian, generate
from .gru import GRU
from .lstm import LSTM
from .plrnn import PLRNN
from .rnn import RNN
from .shplrnn import ShallowPLRNN

MODELS = {"plrnn": PLRNN, "shplrnn": ShallowPLRNN, "rnn": RNN, "lstm": LSTM, "gru": GRU}

__all__ = ["GRU", "LSTM", "MODELS", "Model", "PLRNN", "RNN", "ShallowPLRNN", "autograd_jacobian", "generate"]
