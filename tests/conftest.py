import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test session generates datasets into its own cache dir (never the user's)."""
    import os

    path = tmp_path_factory.mktemp("dsrecon-cache")
    old = os.environ.get("DSRECON_CACHE_DIR")
    os.environ["DSRECON_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DSRECON_CACHE_DIR", None)
    else:
        os.environ["DSRECON_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def lorenz_data(_private_cache):
    import dsrecon as ds

    return ds.load("lorenz")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Numerics modules on small tensors: one torch thread is fastest (two spin at every op: 7x slower on a
    loaded 2-core machine), and results do not depend on the machine's core count. DSRECON_TEST_THREADS=N runs
    them with N threads instead (another kernel path)."""
    import os

    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("DSRECON_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(old)


@pytest.fixture
def ctrl_c_at(monkeypatch):
    """``with ctrl_c_at(n): ...``: a Ctrl-C in the middle of training, at the n-th call of the training loop's
    rollout (``dsrecon.train.rollout``); the real rollout is back when the block ends."""
    from contextlib import contextmanager

    import dsrecon.train as train_mod

    @contextmanager
    def at(n: int):
        real, calls = train_mod.rollout, {"n": 0}

        def interrupted(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(train_mod, "rollout", interrupted)
        try:
            yield
        finally:
            monkeypatch.setattr(train_mod, "rollout", real)

    return at
