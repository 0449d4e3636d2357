"""The Ray options of a sweep (its [ray] section, or the CLI flags that override it), checked in one line each
before anything connects (docs/sweeps.md). Re-exported by :mod:`dsrecon.sweep`."""
from __future__ import annotations

import re
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
    if "address" in out:
        if not isinstance(out["address"], str) or not out["address"].strip():
            raise ConfigError(f"{where} address must be a string (auto, HOST:PORT or ray://HOST:10001), got "
                              f"{out['address']!r}")
        check_address(out["address"], f"{where} address")
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
    for key in ("pip", "uv"):   # Ray: a list of requirement strings, or the path of a requirements file
        if key in env and not (isinstance(env[key], str) or (isinstance(env[key], list)
                                                             and all(isinstance(r, str) for r in env[key]))):
            raise ConfigError(f"{where} {key} must be a list of requirements (e.g. [\"dsrecon\"]) or the path of a "
                              f"requirements file, got {env[key]!r}")
    if "conda" in env and not isinstance(env["conda"], (str, dict)):
        raise ConfigError(f"{where} conda must be an environment name, a YAML file's path or a table, got "
                          f"{env['conda']!r}")
    if "excludes" in env and not (isinstance(env["excludes"], list) and all(isinstance(e, str) for e in env["excludes"])):
        raise ConfigError(f"{where} excludes must be a list of path patterns, got {env['excludes']!r}")
    if "env_vars" in env and (not isinstance(env["env_vars"], dict)
                              or not all(isinstance(k, str) and isinstance(v, str) for k, v in env["env_vars"].items())):
        raise ConfigError(f"{where} env_vars must map names to strings, got {env['env_vars']!r}")
    return env


_ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})|(ray://)[A-Za-z0-9_.\-\[\]:]+")


def check_address(text: str, where: str = "--address") -> None:
    """A Ray address: auto, local, HOST:PORT or ray://HOST[:PORT], one line otherwise: an empty one (an unset shell
    variable) would start a local Ray instance instead of reaching the cluster, a malformed one fail inside Ray
    after the sweep began."""
    address = text.strip()
    match = _ADDRESS.fullmatch(address)
    port = match and (match.group(2) or "10001")
    if address in ("auto", "local") or (match and 1 <= int(port) <= 65535):
        return
    raise ConfigError(f"{where} {text!r} is not a Ray address; give auto, HOST:6379 (on a node of the cluster) or "
                      "ray://HOST:10001 (from outside it), or drop it to start a local Ray instance")
