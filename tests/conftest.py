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
