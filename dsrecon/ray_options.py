"""The Ray options of a sweep (its [ray] section, or the CLI flags that override it), checked in one line each
before anything connects (docs/sweeps.md). Re-exported by :mod:`dsrecon.sweep`."""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

#: the [ray] section of a sweep file (each has a CLI flag that overrides it)
RAY_KEYS = ("address", "runtime_env", "connect_timeout", "max_attempts")
#: the runtime_env fields dsrecon passes on to Ray (https://docs.ray.io/en/latest/ray-core/handling-dependencies.html)
RUNTIME_ENV_KEYS = ("working_dir", "py_modules", "pip", "uv", "conda", "env_vars", "excludes", "config")

def check_ray_options(opts, where: str = "[ray]") -> dict:
    """Validate the Ray options of a sweep (the [ray] section, or the CLI flags): ConfigError in one line."""
    if not isinstance(opts, dict):
        raise ConfigError(f"{where} must be a table, e.g. [ray] with runtime_env = {{ working_dir = \".\" }}; "
                          f"see docs/sweeps.md")
    for key in opts:
        if key not in RAY_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(RAY_KEYS)}")
    out = dict(opts)
    if "address" in out and (not isinstance(out["address"], str) or not out["address"].strip()):
        raise ConfigError(f"{where} address must be a string (auto, HOST:PORT or ray://HOST:10001), got "
                          f"{out['address']!r}")
    if "connect_timeout" in out:
        t = out["connect_timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 3600:
            raise ConfigError(f"{where} connect_timeout must be seconds in (0, 3600], got {t!r}")
    if "max_attempts" in out:
        n = out["max_attempts"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 20:
            raise ConfigError(f"{where} max_attempts must be an integer in [1, 20], got {n!r}")
    if "runtime_env" in out:
        out["runtime_env"] = check_runtime_env(out["runtime_env"], f"{where} runtime_env")
    return out


def check_runtime_env(env, where: str = "--runtime-env") -> dict:
    """A Ray runtime_env (a dict) with only the fields of :data:`RUNTIME_ENV_KEYS`; a relative working_dir or
    local py_modules entry is made absolute (against the current folder); a working_dir must be a folder."""
    if not isinstance(env, dict):
        raise ConfigError(f"{where} must be a table (JSON object) such as {{\"working_dir\": \".\", \"pip\": "
                          f"[\"dsrecon\"]}}, got {env!r}")
    for key in env:
        if key not in RUNTIME_ENV_KEYS:
            raise ConfigError(f"{where}: unknown field {key!r}; allowed: {', '.join(RUNTIME_ENV_KEYS)}")
    env = dict(env)
    wd = env.get("working_dir")
    if wd is not None:
        if not isinstance(wd, str) or not wd.strip():
            raise ConfigError(f"{where} working_dir must be a folder path, got {wd!r}")
        if "://" not in wd:   # a local folder (a remote URI is Ray's to fetch)
            if not Path(wd).is_dir():
                raise ConfigError(f"{where} working_dir {wd!r} is not a folder on this machine")
            env["working_dir"] = str(Path(wd).absolute())
    if "py_modules" in env:
        mods = env["py_modules"]
        if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods):
            raise ConfigError(f"{where} py_modules must be a list of paths or URIs, got {mods!r}")
        env["py_modules"] = [m if "://" in m or not Path(m).exists() else str(Path(m).absolute()) for m in mods]
    if "env_vars" in env and (not isinstance(env["env_vars"], dict)
                              or not all(isinstance(k, str) and isinstance(v, str) for k, v in env["env_vars"].items())):
        raise ConfigError(f"{where} env_vars must map names to strings, got {env['env_vars']!r}")
    return env
