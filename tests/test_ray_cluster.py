"""A sweep on a real two-node Ray cluster (issue 16, part 4), started inside the test on loopback addresses:
a head raylet on 127.0.0.2 and a worker raylet on 127.0.0.3, one CPU each, in a private temp folder, both
stopped (their process groups killed, then any process left under that temp folder) however the test ends.

The sweep is driven from a folder of its own with a relative ``--out`` and a relative data file, while the
cluster was started from another folder. Checked: every run finished, everything (results, models, plots)
lies in the one output folder, the metrics equal the local backend's, and each run names its host and node.

Only loopback addresses (127.0.0.0/8) are used. Every wait is bounded in tries and seconds.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_refused, run_cli

from dsrecon import backends as B, results as R, sweep as S

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"

SWEEP = """[sweep]
name = "cluster"
datasets = ["rec.csv"]
models = ["plrnn"]
methods = ["stf"]
seeds = [0, 1]
taus = [20]
[model]
latent_dim = 6
[train]
steps = 12
validate_every = 0
checkpoint_every = 4
batch_size = 4
seq_len = 40
[eval]
t_gen = 1000
"""


def _free_port(ip: str, taken: set) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError(f"no free port on {ip}")


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _pids_under(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (our private temp folder): only ones this test started."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _start(args: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([_ray_bin(), "start", "--block", *args], cwd=cwd, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_nodes(address: str, n: int, env: dict, head: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Until ``ray status`` lists n active nodes: at most ``timeout`` seconds, one try at a time.

    A fresh machine's first head can take long to serve its GCS (CI once saw ``ray status`` itself hang past 30 s
    while the head was still starting), so a try that times out is one more try, not an error; a head that has
    exited ends the wait at once, with its log."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        if head.poll() is not None:
            break
        try:
            r = subprocess.run([_ray_bin(), "status", "--address", address], env=env, capture_output=True,
                               text=True, timeout=max(5.0, min(60.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            out = "(ray status did not answer in time)"
            continue
        out = r.stdout + r.stderr
        if r.returncode == 0 and r.stdout.count("node_") >= n:
            return
        time.sleep(2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    state = f"the head exited with {head.returncode}" if head.poll() is not None else f"not up in {timeout:.0f} s"
    raise RuntimeError(f"the loopback cluster did not come up with {n} nodes ({state}):\n{out[-2000:]}\n"
                       f"head log:\n{tail}")


@contextlib.contextmanager
def loopback_cluster(cwd: Path, cpus_per_node: int = 1, env_extra: dict | None = None, info: dict | None = None):
    """Start a head (127.0.0.2) and a worker raylet (127.0.0.3) with ``cpus_per_node`` CPUs each; yield the
    head's ``HOST:PORT`` (``info``, if given, gets the private temp folder as "tmp"). Everything it started is
    killed on exit, by process group and then by pid (a plain `ray stop` would also stop other users' Ray)."""
    tmp = Path(tempfile.mkdtemp(prefix="dr", dir="/tmp"))   # short: Ray's socket paths must stay < 108 bytes
    if info is not None:
        info["tmp"] = tmp
    # Ray 2.60 turns token authentication on for a head it starts, and a client (`ray status`, this test's driver)
    # finds the token only where that head wrote it: on a fresh CI machine every call failed "InvalidAuthToken".
    # A loopback test cluster needs no authentication: off for the nodes and for this process (the driver).
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", **(env_extra or {})}
    env.pop("RAY_ADDRESS", None)
    taken: set = set()
    port = _free_port(HEAD_IP, taken)
    procs = []

    # Each raylet's worker ports: a 200-port range of its own, below the kernel's ephemeral range, where the other
    # ports above come from (_free_port binds port 0). Ray refuses to start a node whose worker range holds one of
    # its component ports ("worker_ports is trying to use a port number ... used by other components": CI saw it
    # when the range was drawn from 20000-50199, across the ephemeral ports).
    try:
        eph_lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    span = max(400, eph_lo - 10000 - 400)
    base = 10000 + (os.getpid() * 97) % span
    ranges: list[int] = []

    def worker_range() -> int:
        lo = base + 200 * len(ranges)
        while any(lo <= p < lo + 200 for p in taken):   # never across a component port (a small ephemeral range)
            lo += 200
        ranges.append(lo)
        return lo

    def node_ports(ip):
        lo = worker_range()
        return ["--node-manager-port", str(_free_port(ip, taken)), "--object-manager-port", str(_free_port(ip, taken)),
                "--dashboard-agent-listen-port", str(_free_port(ip, taken)),
                "--dashboard-agent-grpc-port", str(_free_port(ip, taken)),
                "--metrics-export-port", str(_free_port(ip, taken)),
                "--runtime-env-agent-port", str(_free_port(ip, taken)),
                "--min-worker-port", str(lo), "--max-worker-port", str(lo + 199)]

    client_port = _free_port(HEAD_IP, taken)
    if info is not None:
        info["client"] = f"ray://{HEAD_IP}:{client_port}"   # Ray Client, served by the head
    try:
        procs.append(_start(["--head", "--node-ip-address", HEAD_IP, "--port", str(port), "--num-cpus",
                             str(cpus_per_node), "--temp-dir", str(tmp), "--include-dashboard", "false",
                             "--ray-client-server-port", str(client_port), "--disable-usage-stats",
                             *node_ports(HEAD_IP)], cwd, env, tmp / "head.log"))
        address = f"{HEAD_IP}:{port}"
        _wait_nodes(address, 1, env, procs[0], tmp / "head.log")
        procs.append(_start(["--address", address, "--node-ip-address", WORKER_IP, "--num-cpus", str(cpus_per_node),
                             "--disable-usage-stats", *node_ports(WORKER_IP)], cwd, env, tmp / "worker.log"))
        _wait_nodes(address, 2, env, procs[0], tmp / "head.log")
        yield address
    finally:
        for p in reversed(procs):   # SIGTERM lets `ray start --block` stop its own services
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=20)
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        for _ in range(3):   # a service that left its process group (none seen so far): by pid, ours only
            left = _pids_under(str(tmp))
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not left:
                break
            time.sleep(1)
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth
        shutil.rmtree(tmp, ignore_errors=True)


def _scored(results) -> bool:
    """Every run trained and scored: "ok", or "failed" by the scoring's dynamics verdict (a model of a few
    hundred steps may collapse to a fixed point), never an error or a failure of the run itself."""
    status, reason = results["status"].values, results["reason"].values
    return all(s == "ok" or (s == "failed" and str(r).startswith("the free run")) for s, r in zip(status, reason)) \
        and bool(np.all(np.isfinite(results["D_stsp"].values)))


def write_recording(path: Path, n: int = 20_000) -> Path:
    """A Lorenz series as a CSV file with a time column (a user's recording)."""
    import dsrecon as ds

    data = ds.load("lorenz").isel(time=slice(0, n))
    x, t = data["x"].values, data["time"].values
    lines = ["time,x,y,z"] + [f"{float(ti)!r},{float(a)!r},{float(b)!r},{float(c)!r}" for ti, (a, b, c) in zip(t, x)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_a_sweep_on_a_two_node_loopback_cluster_writes_one_place_and_equals_the_local_backend(tmp_path):
    pytest.importorskip("ray")
    from dsrecon.cli import main

    drv, elsewhere, local = tmp_path / "drv", tmp_path / "cluster-cwd", tmp_path / "local"
    for d in (drv, elsewhere, local):
        d.mkdir()
    write_recording(drv / "rec.csv")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "s.toml").write_text(SWEEP)
    shutil.copy(drv / "rec.csv", local / "rec.csv")
    (drv / "proj").mkdir()
    shutil.copy(drv / "rec.csv", drv / "proj" / "rec.csv")
    (tmp_path / "cfg" / "s2.toml").write_text(SWEEP.replace('"rec.csv"', '"proj/rec.csv"'))

    old = Path.cwd()
    try:
        os.chdir(local)   # the reference: the local backend, 2 processes, the same relative paths
        assert main(["sweep", "../cfg/s.toml", "--out", "rel_out", "--workers", "2", "--quiet"]) == 0
        info: dict = {}
        with loopback_cluster(elsewhere, info=info) as address:
            os.chdir(drv)
            t0 = time.monotonic()
            code = main(["sweep", "../cfg/s.toml", "--out", "rel_out", "--backend", "ray", "--address", address,
                         "--quiet"])
            seconds = time.monotonic() - t0
            import ray

            assert not ray.is_initialized()   # the sweep disconnected
            # case 5: the data shipped in a runtime_env working_dir (each task's current folder on its node)
            code2 = main(["sweep", "../cfg/s2.toml", "--out", "rel_out2", "--backend", "ray", "--address", address,
                          "--runtime-env", '{"working_dir": "proj"}', "--quiet"])
            # case 6: the same through Ray Client (ray://, the head's client server), as from outside the cluster
            code3 = main(["sweep", "../cfg/s2.toml", "--out", "rel_out3", "--backend", "ray", "--address",
                          info["client"], "--runtime-env", '{"working_dir": "proj"}', "--quiet"])
    finally:
        os.chdir(old)
    assert code == 0
    out = drv / "rel_out"
    ds = R.read_results(out)
    assert ds.sizes["run"] == 2 and _scored(ds)
    # one output place: every run folder complete under drv/rel_out, nothing where the cluster was started
    for rd in ds["run_dir"].values:
        rd = Path(str(rd))
        assert rd.parent == out.resolve() / "runs" or rd.parent == out.absolute() / "runs", rd
        for name in ("result.json", "model.pt", "metrics.json", "config.json", "generated.nc"):
            assert (rd / name).is_file(), (rd, name)
        assert list(rd.glob("*.png")), rd
    assert not any(elsewhere.iterdir()), sorted(map(str, elsewhere.rglob("*")))[:5]
    # the node of each run is recorded, in result.json and results.nc
    nodes = {str(n) for n in ds["node"].values}
    assert all(len(n) > 10 for n in nodes) and all(str(h) for h in ds["host"].values)
    for rd in ds["run_dir"].values:
        assert json.loads((Path(str(rd)) / "result.json").read_text())["node"] in nodes
    # the same numbers as the local backend (the same run_one, one torch thread per run)
    ref = R.read_results(local / "rel_out").sortby("key")
    got = ds.sortby("key")
    assert list(ref["key"].values) == list(got["key"].values)
    for m in ("D_stsp", "D_H", "PSC", "PE", "floor_D_stsp"):
        np.testing.assert_array_equal(ref[m].values, got[m].values, err_msg=m)   # bit for bit (NaN = NaN)
    print(f"ray loopback cluster: 2 runs in {seconds:.1f} s on {len(nodes)} node(s)")
    assert code2 == 0
    shipped = R.read_results(drv / "rel_out2").sortby("seed")
    np.testing.assert_array_equal(shipped["D_stsp"].values, got.sortby("seed")["D_stsp"].values)
    for rd in shipped["run_dir"].values:   # the file was read where working_dir was unpacked, by its relative name
        assert json.loads((Path(str(rd)) / "config.json").read_text())["config"]["data"]["name"] == "rec.csv"
    assert code3 == 0
    client = R.read_results(drv / "rel_out3").sortby("seed")
    np.testing.assert_array_equal(client["D_stsp"].values, shipped["D_stsp"].values)
    assert all((Path(str(rd)) / "model.pt").is_file() for rd in client["run_dir"].values)


# ------------------------------------------------------------------ the 8 cases of issue 16 without a cluster
# A fake `ray` runs each task at once in this process, on a named fake node, so that the driver's logic (paths,
# retries on another node, runs returned by nodes without the shared folder, node ids) is tested in seconds.
# Training is stubbed as in test_hostile_sweep.py; the real cluster test above runs real fits.

STUB = """[sweep]
name = "s"
datasets = [{dataset}]
models = ["plrnn"]
methods = ["gtf"]
seeds = [0, 1]
[train]
steps = 12
[eval]
t_gen = 1000
{tail}"""


class _Ref:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error


class FakeRay:
    """Tasks run at submission, on node ``nodes[i]`` round robin (or the one a NodeAffinity strategy names).
    ``fail(node, spec)`` may raise (the node died) or return a record instead of running the task."""

    def __init__(self, nodes=("node-a", "node-b"), fail=None, sees_shared=lambda node: True):
        self.node_ids, self.fail, self.sees_shared = list(nodes), fail, sees_shared
        self.initialized, self.init_kw, self.ran, self.turn, self.current = False, None, [], 0, ""

    # the API the driver uses
    def is_initialized(self):
        return self.initialized

    def init(self, **kw):
        self.initialized, self.init_kw = True, kw

    def shutdown(self):
        self.initialized = False

    def nodes(self):
        return [{"NodeID": n, "Alive": True, "Resources": {"CPU": 1.0}} for n in self.node_ids]

    def get_runtime_context(self):
        return types.SimpleNamespace(get_node_id=lambda: self.current)

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def remote(self, **opts):
        fake = self

        class Task:
            def __init__(self, fn, strategy=None):
                self.fn, self.strategy = fn, strategy

            def options(self, scheduling_strategy=None):
                return Task(self.fn, scheduling_strategy)

            def remote(self, spec):
                if self.strategy is not None:
                    node = self.strategy.node_id
                else:
                    node = fake.node_ids[fake.turn % len(fake.node_ids)]
                    fake.turn += 1
                fake.current = node
                fake.ran.append((spec["key"], node))
                if not fake.sees_shared(node):
                    spec = {**spec, "shared": {**spec["shared"], "token": "another node's view"}}
                try:
                    if fake.fail is not None:
                        rec = fake.fail(node, spec)
                        if rec is not None:
                            return _Ref(rec)
                    return _Ref(self.fn(spec))
                except Exception as err:  # noqa: BLE001 - a lost node, as ray.get raises it
                    return _Ref(error=err)
        return lambda fn: Task(fn)


@pytest.fixture
def fake_ray(monkeypatch):
    def install(**kw):
        fake = FakeRay(**kw)
        mod = types.ModuleType("ray")
        for name in ("is_initialized", "init", "shutdown", "nodes", "get_runtime_context", "wait", "get", "remote"):
            setattr(mod, name, getattr(fake, name))
        strategies = types.ModuleType("ray.util.scheduling_strategies")
        strategies.NodeAffinitySchedulingStrategy = lambda node_id, soft: types.SimpleNamespace(node_id=node_id)
        util = types.ModuleType("ray.util")
        util.scheduling_strategies = strategies
        private = types.ModuleType("ray._private")
        worker = types.ModuleType("ray._private.worker")
        worker.print_to_stdstream = lambda data, ignore_prefix=False: None
        private.worker = worker
        mod.util, mod._private = util, private
        for name, m in (("ray", mod), ("ray.util", util), ("ray.util.scheduling_strategies", strategies),
                        ("ray._private", private), ("ray._private.worker", worker)):
            monkeypatch.setitem(sys.modules, name, m)
        return fake
    return install


@pytest.fixture
def stub_runs(monkeypatch):
    """Runs that 'train' instantly and write a model and a figure, as a fit does."""
    ran = []

    def fake_run_model(spec, run_dir):
        ran.append(spec["key"])
        (run_dir / "model.pt").write_bytes(b"weights")
        (run_dir / "fit.png").write_bytes(b"png")
        (run_dir / "metrics.json").write_text(json.dumps({"D_stsp": 1.0 + spec["seed"]}))
        return {"D_stsp": 1.0 + spec["seed"], "D_H": 0.1, "PSC": 0.9, "T_gen": 1000,
                "noise_floor": {"D_stsp": 0.05}, "variants": {}}, None

    monkeypatch.setattr(B, "_run_model", fake_run_model)
    return ran


def _stub_sweep(folder: Path, dataset='"lorenz"', tail="") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "s.toml"
    p.write_text(STUB.format(dataset=dataset, tail=tail))
    return p


def _csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(3000) * 0.01
    path.write_text("time,x\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(t.tolist(), np.sin(t).tolist())))
    return path


def test_case1_2_relative_out_and_data_are_made_absolute_by_the_driver(tmp_path, monkeypatch, fake_ray, stub_runs,
                                                                        capsys):
    """Cases 1, 2: the driver sends absolute paths (run folder, data file, data_dir, cache), so a node whose
    current folder is elsewhere writes into the sweep's --out and reads the user's file."""
    _csv(tmp_path / "drv" / "rec.csv")
    _stub_sweep(tmp_path / "cfg", '"rec.csv"', '[data]\ndata_dir = "dl"\n')
    monkeypatch.chdir(tmp_path / "drv")
    monkeypatch.setenv("DSRECON_CACHE_DIR", "cache")
    spec = B.portable_spec(S.load_sweep("../cfg/s.toml", out="rel_out").specs[0])
    assert spec["run_dir"] == str(tmp_path / "drv" / "rel_out" / "runs" / Path(spec["run_dir"]).name)
    assert spec["config"]["data"]["name"] == str(tmp_path / "drv" / "rec.csv") == spec["needs"][0]
    assert spec["config"]["data"]["data_dir"] == str(tmp_path / "drv" / "dl")
    assert spec["env"]["DSRECON_CACHE_DIR"] == str(tmp_path / "drv" / "cache")
    assert spec["key"] == S.load_sweep("../cfg/s.toml", out="rel_out").specs[0]["key"]   # the key is unchanged

    fake = fake_ray()
    code, out, err = run_cli(["sweep", "../cfg/s.toml", "--out", "rel_out", "--backend", "ray", "--address", "auto",
                              "--quiet"], capsys)
    assert code == 0, err
    ds = R.read_results("rel_out")
    assert ds.sizes["run"] == 2 and set(ds["status"].values) == {"ok"}
    assert all(Path(str(r)).is_absolute() and Path(str(r)).parent == tmp_path / "drv" / "rel_out" / "runs"
               for r in ds["run_dir"].values)
    assert {n for _, n in fake.ran} == {"node-a", "node-b"}
    assert sorted(map(str, ds["node"].values)) == ["node-a", "node-b"]    # case 4: the node of each run


def test_case2_a_relative_data_path_that_ray_client_nodes_cannot_see_is_refused(tmp_path, monkeypatch, capsys):
    _csv(tmp_path / "rec.csv")
    _stub_sweep(tmp_path)
    (tmp_path / "s.toml").write_text((tmp_path / "s.toml").read_text().replace('"lorenz"', '"rec.csv"'))
    monkeypatch.chdir(tmp_path)
    assert_refused(["sweep", "s.toml", "--backend", "ray", "--address", "ray://127.0.0.9:10001"], capsys,
                   watch=tmp_path, match=["'rec.csv'", "Ray Client", "working_dir"])
    # shipped in working_dir, it becomes relative to it (each task's current folder)
    env = S.check_runtime_env({"working_dir": "."})
    spec = B.portable_spec(S.load_sweep("s.toml").specs[0], runtime_env=env, address="ray://127.0.0.9:10001")
    assert spec["config"]["data"]["name"] == "rec.csv" and env["working_dir"] == str(tmp_path)


def test_case3_a_file_missing_on_one_node_is_retried_on_another_and_never_recorded_finished(
        tmp_path, monkeypatch, fake_ray, stub_runs, capsys):
    data = _csv(tmp_path / "rec.csv")
    _stub_sweep(tmp_path, '"rec.csv"')
    monkeypatch.chdir(tmp_path)

    def node_a_lacks_it(node, spec):   # run_one itself on a node where the file is not
        if node == "node-a":
            return B.run_one({**spec, "needs": [str(tmp_path / "not-on-this-node" / data.name)]})
        return None

    fake = fake_ray(fail=node_a_lacks_it)
    code, out, err = run_cli(["sweep", "s.toml", "--backend", "ray", "--address", "auto", "--quiet"], capsys)
    assert code == 0, err
    assert "retrying" in out and "no such file on host" in out and "try 2 of 3" in out
    ds = R.read_results("runs/sweeps/s")
    assert set(ds["status"].values) == {"ok"} and set(map(str, ds["node"].values)) == {"node-b"}
    assert len(fake.ran) == 3   # one run went to node-a first, then to node-b

    # every node lacks it: after --max-attempts tries the run is an error (exit 1), not a finished "failed" run
    fake = fake_ray(fail=lambda node, spec: B.run_one({**spec, "needs": ["/nonexistent/rec.csv"]}))
    code, out, err = run_cli(["sweep", "s.toml", "--backend", "ray", "--address", "auto", "--quiet",
                              "--out", "o2", "--max-attempts", "2"], capsys)
    assert code == 1 and "(after 2 tries)" in out and len(fake.ran) == 4
    assert not list(Path("o2").glob("runs/*/result.json")) and not Path("o2/results.nc").exists()
    # a lost node (ray.get raises) is retried the same way
    died = []

    def node_dies_once(node, spec):
        if not died:
            died.append(node)
            raise RuntimeError("NodeDiedError: the node running this task died")

    fake = fake_ray(fail=node_dies_once)
    code, out, err = run_cli(["sweep", "s.toml", "--backend", "ray", "--address", "auto", "--quiet", "--out", "o3"],
                             capsys)
    assert code == 0 and "NodeDiedError" in out and len(fake.ran) == 3
    assert set(R.read_results("o3")["status"].values) == {"ok"}


def test_case3_a_restart_keeps_failed_runs_unless_told_to_retry(tmp_path, monkeypatch, stub_runs, capsys):
    _stub_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_cli(["sweep", "s.toml", "--workers", "1", "--quiet"], capsys)[0] == 0
    first = sorted(Path("runs/sweeps/s/runs").glob("*/result.json"))[0]
    rec = json.loads(first.read_text())
    first.write_text(json.dumps({**rec, "status": "failed", "reason": "no such file: rec.csv", "metrics": {}}))
    ran = len(stub_runs)
    code, out, _ = run_cli(["sweep", "s.toml", "--workers", "1", "--quiet"], capsys)
    assert code == 0 and len(stub_runs) == ran                                   # kept as it is
    code, out, _ = run_cli(["sweep", "s.toml", "--workers", "1", "--quiet", "--retry-failed"], capsys)
    assert code == 0 and len(stub_runs) == ran + 1 and "1 failed run(s) are run again" in out
    assert json.loads(first.read_text())["status"] == "ok"
    assert json.loads((first.parent / "result.json.failed").read_text())["status"] == "failed"   # kept


def test_case4_a_node_without_the_shared_output_returns_its_run_to_the_driver(tmp_path, monkeypatch, fake_ray,
                                                                             stub_runs, capsys):
    _stub_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    fake_ray(sees_shared=lambda node: node == "node-a")
    code, out, err = run_cli(["sweep", "s.toml", "--backend", "ray", "--address", "auto", "--quiet"], capsys)
    assert code == 0, err
    ds = R.read_results("runs/sweeps/s")
    for rd, node in zip(ds["run_dir"].values, ds["node"].values):
        rd = Path(str(rd))
        assert {"model.pt", "fit.png", "metrics.json", "result.json"} <= {p.name for p in rd.iterdir()}, rd
        rec = json.loads((rd / "result.json").read_text())
        assert rec["node"] == str(node) and rec["host"] == socket.gethostname()
        assert (rec.get("artifacts") == "returned to the driver") == (node == "node-b")
    assert not list(Path(tempfile.gettempdir()).glob("dsrecon-run-*/" + Path(str(ds["run_dir"].values[0])).name))


def test_case5_runtime_env_from_the_flag_or_the_ray_section(tmp_path, monkeypatch, fake_ray, stub_runs, capsys):
    _stub_sweep(tmp_path, tail='[ray]\nruntime_env = { working_dir = ".", pip = ["dsrecon"] }\nmax_attempts = 2\n')
    monkeypatch.chdir(tmp_path)
    fake = fake_ray()
    assert run_cli(["sweep", "s.toml", "--backend", "ray", "--quiet"], capsys)[0] == 0
    assert fake.init_kw["runtime_env"] == {"working_dir": str(tmp_path), "pip": ["dsrecon"]}
    fake = fake_ray()
    assert run_cli(["sweep", "s.toml", "--backend", "ray", "--quiet", "--out", "o2",
                    "--runtime-env", '{"env_vars": {"OMP_NUM_THREADS": "1"}}'], capsys)[0] == 0
    assert fake.init_kw["runtime_env"] == {"env_vars": {"OMP_NUM_THREADS": "1"}}


@pytest.mark.parametrize("args, tail, match", [
    (["--runtime-env", '{"workdir": "."}'], "", ["--runtime-env", "'workdir'", "working_dir, py_modules, pip"]),
    (["--runtime-env", "{not json"], "", ["--runtime-env", "not valid JSON"]),
    (["--runtime-env", '{"working_dir": "nowhere"}'], "", ["working_dir", "'nowhere'", "not a folder"]),
    (["--connect-timeout", "0"], "", ["connect_timeout", "got 0"]),
    ([], "[ray]\nadress = 'auto'\n", ["[ray]", "'adress'", "address, runtime_env"]),
    ([], "[ray]\nruntime_env = 5\n", ["[ray] runtime_env", "must be a table"]),
])
def test_case5_bad_ray_options_are_refused_in_one_line(tmp_path, monkeypatch, capsys, args, tail, match):
    _stub_sweep(tmp_path, tail=tail)
    monkeypatch.chdir(tmp_path)
    assert_refused(["sweep", "s.toml", "--backend", "ray", *args], capsys, watch=tmp_path, match=match)


def test_case6_the_ray_extra_has_ray_client_and_a_missing_client_is_one_line(tmp_path, monkeypatch, fake_ray,
                                                                           capsys):
    import tomllib

    extra = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["ray"]
    assert any(r.replace(" ", "").startswith("ray[client]") for r in extra), extra
    fake = fake_ray()

    def no_client(**kw):
        raise ImportError(
            "Ray Client requires pip package `ray[client]`. If you installed the minimal Ray (e.g. `pip install "
            "ray`), please reinstall by executing `pip install ray[client]`.")

    sys.modules["ray"].init = no_client
    with socket.socket() as srv:   # something listens (on loopback), so the address probe passes
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        _stub_sweep(tmp_path)
        monkeypatch.chdir(tmp_path)
        assert_refused(["sweep", "s.toml", "--backend", "ray", "--address", f"ray://127.0.0.1:{srv.getsockname()[1]}"],
                       capsys, watch=tmp_path, match=["ray[client]", "pip install 'dsrecon[ray]'"])
    assert not fake.initialized


def test_case7_an_unreachable_address_is_one_line_within_the_connect_timeout(tmp_path, monkeypatch, capsys):
    """Nothing listens on 127.0.0.9 (loopback): Ray itself would retry for minutes."""
    pytest.importorskip("ray")
    _stub_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    t0 = time.monotonic()
    line = assert_refused(["sweep", "s.toml", "--backend", "ray", "--address", "127.0.0.9:6390",
                           "--connect-timeout", "1.5"], capsys, watch=tmp_path,
                          match=["127.0.0.9:6390", "nothing accepts connections", "--connect-timeout"])
    assert time.monotonic() - t0 < 10, line
    assert B.CONNECT_TIMEOUT <= 60    # the default bound of the target "within 60 s"


def test_case8_a_dead_raylets_message_is_printed_once():
    shown = []
    once = B._OnceEach(lambda data, ignore_prefix=False: shown.append(data["lines"]))
    dump = {"lines": ["The node with node id abc has been marked dead\n[raylet.out tail] ..."], "pid": "raylet"}
    once(dump, ignore_prefix=False)
    once(dict(dump), ignore_prefix=False)
    once({"lines": ["another message"], "pid": "raylet"}, ignore_prefix=False)
    assert shown == [dump["lines"], ["another message"]]


def test_case8_the_leaderboard_counts_missing_runs_in_ok_n(tmp_path, monkeypatch, stub_runs, capsys):
    from dsrecon import leaderboard as L

    _stub_sweep(tmp_path, tail="").write_text(STUB.format(dataset='"lorenz", "rossler"', tail=""))
    monkeypatch.chdir(tmp_path)
    assert run_cli(["sweep", "s.toml", "--workers", "1", "--quiet"], capsys)[0] == 0
    out = Path("runs/sweeps/s")
    ds = R.read_results(out)
    lost = next(i for i in range(4) if str(ds["dataset"].values[i]) == "rossler")
    keep = [i for i in range(4) if i != lost]
    (out / "results.nc").write_bytes(ds.isel(run=keep).to_netcdf())   # as if the run's node died
    code, text, _ = run_cli(["leaderboard", str(out)], capsys)
    assert code == 0
    assert "| rossler | plrnn | gtf | – | 1/2 |" in text and "| lorenz | plrnn | gtf | – | 2/2 |" in text
    assert "Missing runs" in text and "rossler plrnn gtf: 1 of 2" in text
    assert "| rossler | plrnn | gtf | – | 1/2 |" in (out / "leaderboard.md").read_text()
    rows = L.leaderboard_rows(R.read_results(out), expected=L.expected_runs(out))
    assert [(r["dataset"], r["ok"], r["n"], r["missing"]) for r in rows] == [("lorenz", 2, 2, 0), ("rossler", 1, 2, 1)]


@pytest.mark.slow
def test_a_node_killed_mid_sweep_is_retried_on_the_other_node_and_its_dump_printed_once(tmp_path, capfd):
    """Case 3 and 8 on the real cluster: the worker raylet is killed (SIGKILL) while it trains a run; the run
    is submitted again, lands on the head, resumes from its checkpoint in the shared --out, and the sweep ends
    with every run finished (exit 0). Ray's report of the dead node appears at most once."""
    pytest.importorskip("ray")
    import threading

    from dsrecon.cli import main

    here, elsewhere = tmp_path / "drv", tmp_path / "cluster-cwd"
    here.mkdir()
    elsewhere.mkdir()
    (here / "s.toml").write_text(SWEEP.replace('["rec.csv"]', '["lorenz"]').replace("steps = 12", "steps = 400")
                                 .replace("checkpoint_every = 4", "checkpoint_every = 20"))
    info: dict = {}
    killed: list = []

    def kill_worker_raylet_once_training():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list((here / "o").glob("runs/*/checkpoints/last.pt")):
            time.sleep(0.2)
        pids = [p for p in _pids_under(str(info["tmp"]))
                if b"raylet" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]
                and WORKER_IP.encode() in Path(f"/proc/{p}/cmdline").read_bytes()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed.extend(pids)

    old = Path.cwd()
    try:
        with loopback_cluster(elsewhere, info=info, env_extra={"RAY_health_check_period_ms": "1000",
                                                               "RAY_health_check_failure_threshold": "3"}) as address:
            os.chdir(here)
            t = threading.Thread(target=kill_worker_raylet_once_training, daemon=True)
            t.start()
            code = main(["sweep", "s.toml", "--out", "o", "--backend", "ray", "--address", address, "--quiet"])
            t.join(timeout=10)
    finally:
        os.chdir(old)
    out, err = capfd.readouterr()
    text = out + err
    assert killed, "the worker raylet was not found"
    assert code == 0, text[-3000:]
    assert "retrying" in text, text[-3000:]
    ds = R.read_results(here / "o")
    assert ds.sizes["run"] == 2 and _scored(ds)
    lines = [line for line in text.splitlines() if len(line) > 40]
    repeated = {line for line in lines if lines.count(line) > 1 and "it/s" not in line}
    print(text[-4000:])
    assert not repeated, sorted(repeated)[:5]


def test_the_ray_table_of_docs_sweeps_md_is_a_valid_sweep_section(tmp_path, monkeypatch):
    import re
    import tomllib

    page = (Path(__file__).resolve().parents[1] / "docs" / "sweeps.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", page, flags=re.S) if b.startswith("[ray]"))
    monkeypatch.chdir(tmp_path)
    opts = S.check_ray_options(tomllib.loads(block)["ray"])
    assert opts["runtime_env"]["working_dir"] == str(tmp_path) and opts["address"].startswith("ray://")
    cmd = re.search(r"--runtime-env '(\{.*?\})'", page).group(1)
    assert S.check_runtime_env(json.loads(cmd))["pip"] == ["dsrecon"]
