"""Errors that reach the user: each says what is wrong, where, and how to fix it.

The CLI prints ``str(err)`` on one line and exits with status 2; ``--debug`` shows the traceback.
"""


class DsreconError(Exception):
    """Base class of every error dsrecon raises on purpose."""


class DataError(DsreconError):
    """Input data are unusable: NaNs, wrong shape, too short, unknown dataset, missing file."""


class InputError(DataError):
    """A model's external inputs and the inputs it is given disagree: none for a driven model, some for an
    autonomous one, another number of channels, or too few steps (:mod:`dsrecon.inputs`)."""


class ConfigError(DsreconError):
    """A setting is invalid: unknown key, out-of-range value, bad combination."""


class DivergenceError(DsreconError):
    """Training diverged (non-finite loss or exploding state) and could not recover."""
