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

from . import flossing, forcing, lyapunov, metrics, preprocess, runs, systems  # noqa: E402
from .config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from .data import available, independent_trajectory, load, to_physical, train_test_split, true_spectrum  # noqa: E402
from .ensemble import Ensemble  # noqa: E402
from .errors import ConfigError, DataError, DivergenceError, DsreconError  # noqa: E402
from .evaluation import evaluate, generate, model_spectrum  # noqa: E402
from .experiment import Run, fit  # noqa: E402
from .lyapunov import LyapunovSpectrum, kaplan_yorke_dimension, lyapunov_spectrum  # noqa: E402
from .maxlyap import ESTIMATORS, MaxLyapunov, max_lyapunov  # noqa: E402
from .metrics import d_stsp, hellinger_distance, power_spectrum_correlation  # noqa: E402
from .models import GRU, LSTM, MODELS, PLRNN, RNN, Model, ShallowPLRNN  # noqa: E402
from .score import Score  # noqa: E402
from .tau import ForcingInterval, forcing_interval  # noqa: E402

# what a user holds: data and configs in, a Run, Scores, MaxLyapunov / ForcingInterval / LyapunovSpectrum out.
# Internals (experiment.fit_run, the CLI's path; the train loop; dsrecon.tasks, imported as its own module) are not
# re-exported here.
__all__ = [
    "ConfigError", "DataConfig", "DataError", "DivergenceError", "DsreconError", "ESTIMATORS", "Ensemble", "EvalConfig",
    "ForcingInterval", "GRU", "LSTM", "LyapunovSpectrum", "MODELS", "MaxLyapunov", "Model", "ModelConfig", "PLRNN", "RNN",
    "Run", "RunConfig", "Score", "ShallowPLRNN", "TrainConfig", "available", "d_stsp", "evaluate", "fit", "flossing",
    "forcing", "forcing_interval", "generate", "hellinger_distance", "independent_trajectory", "kaplan_yorke_dimension",
    "load", "lyapunov", "lyapunov_spectrum", "max_lyapunov", "metrics", "model_spectrum", "power_spectrum_correlation",
    "preprocess", "runs", "systems", "to_physical", "train_test_split", "true_spectrum",
]
