"""dsrecon: reconstruct the dynamics behind chaotic time series with RNNs.

Typical use (the CLI's ``dsrecon fit lorenz --tau auto`` does exactly this)::

    import dsrecon as ds
    data = ds.load("lorenz")
    train, test = ds.train_test_split(data)
    lam = ds.lyapunov.max_lyapunov(train)
    model = ds.PLRNN(obs_dim=3, latent_dim=100, seed=0)
    run = ds.fit(model, data, tau="auto")
    gen = ds.generate(run.model, 100_000, like=test)
    print(ds.d_stsp(test, gen), ds.hellinger_distance(test, gen))
"""
__version__ = "0.1.0"

from . import flossing, forcing, lyapunov, metrics, preprocess, systems, tasks  # noqa: E402
from .config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from .ensemble import Ensemble  # noqa: E402
from .data import available, independent_trajectory, load, to_physical, train_test_split  # noqa: E402
from .errors import ConfigError, DataError, DivergenceError, DsreconError  # noqa: E402
from .experiment import evaluate, fit, fit_run, generate  # noqa: E402
from .lyapunov import kaplan_yorke_dimension, lyapunov_spectrum  # noqa: E402
from .metrics import d_stsp, hellinger_distance, power_spectrum_correlation  # noqa: E402
from .models import GRU, LSTM, MODELS, PLRNN, RNN, Model, ShallowPLRNN  # noqa: E402

__all__ = [
    "ConfigError", "DataConfig", "DataError", "DivergenceError", "DsreconError", "Ensemble", "EvalConfig", "GRU", "LSTM",
    "MODELS", "Model", "ModelConfig", "PLRNN", "RNN", "ShallowPLRNN", "flossing", "forcing", "preprocess", "systems", "tasks", "RunConfig", "TrainConfig", "available", "d_stsp", "evaluate", "fit", "fit_run",
    "generate", "hellinger_distance", "independent_trajectory", "kaplan_yorke_dimension", "lyapunov_spectrum", "load", "lyapunov", "metrics",
    "power_spectrum_correlation", "to_physical", "train_test_split",
]
