"""Models on the shared :class:`~dsrecon.models.base.Model` interface, one architecture per module.

``MODELS`` maps the names used by the config and the CLI to the classes; every class is rebuilt from its
``hparams`` (``MODELS[kind](**model.hparams)``).
"""
from .base import Model, autograd_jacobian, free_run
from .gru import GRU
from .lstm import LSTM
from .plrnn import PLRNN
from .rnn import RNN
from .shplrnn import ShallowPLRNN

MODELS = {"plrnn": PLRNN, "shplrnn": ShallowPLRNN, "rnn": RNN, "lstm": LSTM, "gru": GRU}


def upgrade_hparams(kind: str, hparams: dict) -> dict:
    """The constructor arguments ``hparams`` of a saved model of ``kind``, in today's names: an LSTM saved before
    issue 13 called its number of units H ``latent_dim`` (its state is 2H); it is ``units`` now."""
    hp = dict(hparams)
    if kind == "lstm" and "latent_dim" in hp and "units" not in hp:
        hp["units"] = hp.pop("latent_dim")
    return hp


__all__ = ["GRU", "LSTM", "MODELS", "Model", "PLRNN", "RNN", "ShallowPLRNN", "autograd_jacobian", "free_run",
           "upgrade_hparams"]
