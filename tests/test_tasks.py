"""The delayed tasks of "Gradient Flossing" (§6-7, App. H) and training on them (dsrecon.tasks)."""
import math

import pytest
import torch

from dsrecon.errors import ConfigError
from dsrecon.lyapunov import lyapunov_spectrum
from dsrecon.tasks import (SUCCESS_FRACTION, Task, TaskBatch, binary_temporal_xor, delayed_copy, make_batch,
                           sample_inputs, spatial_xor, task_loss, task_model, temporal_xor, train_task)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny per-step ops: two torch threads on the shared 2-core machine are ~8x slower than one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def col(values):
    """(T,) list -> (T, 1, 1) tensor: one sequence of a scalar stream."""
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1)


# -- targets against hand-computed values ----------------------------------------------------------
def test_copy_by_hand():
    # y_t = x_{t-d} (App. H.1), d = 2; undefined steps t < d are 0 and masked
    x = col([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert delayed_copy(x, 2).flatten().tolist() == pytest.approx([0, 0, 0.1, 0.2, 0.3, 0.4])


def test_continuous_xor_by_hand():
    # y_t = |x_{t-d/2} - x_{t-d}| (Eq. 20), d = 2: |x_{t-1} - x_{t-2}| from t = 2 on
    x = col([0.9, 0.2, 0.7, 0.7, 0.0, 1.0])
    # t=2: |0.2-0.9|; t=3: |0.7-0.2|; t=4: |0.7-0.7|; t=5: |0.0-0.7|
    assert temporal_xor(x, 2).flatten().tolist() == pytest.approx([0, 0, 0.7, 0.5, 0.0, 0.7])


def test_binary_xor_by_hand():
    # y_t = x_{t-2} XOR x_{t-4} (§7 with d = 4; not Table 2's x_{t-2d}, digest §12 #3)
    x = col([1, 0, 1, 1, 0, 0, 1, 0])
    # t=4: x2^x0 = 1^1 = 0; t=5: x3^x1 = 1^0 = 1; t=6: x4^x2 = 0^1 = 1; t=7: x5^x3 = 0^1 = 1
    assert binary_temporal_xor(x, 4).flatten().tolist() == [0, 0, 0, 0, 0, 1, 1, 1]


def test_spatial_xor_by_hand():
    # y_t = x¹_{t-d} XOR x²_{t-d} XOR x³_{t-d} (§7), d = 1: parity of the previous step's three bits
    x = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=torch.float32).unsqueeze(1)
    assert spatial_xor(x, 1).flatten().tolist() == [0, 1, 1, 0, 0]


@pytest.mark.parametrize("name,d", [("copy", 3), ("xor", 4), ("binary_xor", 6), ("spatial_xor", 5)])
def test_every_target_equals_its_definition(name, d):
    # an independent loop over t and b re-implements each definition of digest §7.5
    task = Task(name, d, T=25)
    data = make_batch(task, 4, torch.Generator().manual_seed(0))
    assert isinstance(data, TaskBatch)
    x, y = data.inputs.numpy(), data.targets.numpy()
    assert x.shape == (25, 4, task.input_dim) and y.shape == (25, 4, 1) and data.mask.shape == (25,)
    assert data.mask.tolist() == [t >= d for t in range(25)]
    for t in range(d, 25):
        for b in range(4):
            if name == "copy":
                want = x[t - d, b, 0]
            elif name in ("xor", "binary_xor"):
                want = abs(x[t - d // 2, b, 0] - x[t - d, b, 0])
            else:
                want = int(x[t - d, b].sum()) % 2
            assert y[t, b, 0] == pytest.approx(want)
    assert not y[:d].any()


def test_input_distributions():
    gen = torch.Generator().manual_seed(1)
    u = sample_inputs(Task("copy", 2), 4000, 2, gen)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.02    # U(0,1): mean 1/2, sd of mean 0.005
    bits = sample_inputs(Task("spatial_xor", 2), 4000, 2, gen)
    assert bits.shape == (4000, 2, 3) and set(bits.unique().tolist()) == {0.0, 1.0}
    assert abs(bits.mean().item() - 0.5) < 0.02                                   # fair Bernoulli
    # the same generator state gives the same batch: pure functions of the generator
    a = make_batch(Task("xor", 4, T=10), 3, torch.Generator().manual_seed(5))
    b = make_batch(Task("xor", 4, T=10), 3, torch.Generator().manual_seed(5))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


def test_trivial_losses_match_sampled_target_variances():
    # copy: Var U(0,1) = 1/12; xor: Var|a-b| = 1/6 - 1/9 = 1/18; binary: ln 2 (cross-entropy of p = 1/2)
    gen = torch.Generator().manual_seed(2)
    for name in ("copy", "xor"):
        task = Task(name, 2, T=2000)
        y = make_batch(task, 8, gen).targets[2:]
        assert y.var().item() == pytest.approx(task.trivial_loss, rel=0.05)
    assert Task("binary_xor", 2).trivial_loss == pytest.approx(math.log(2))


def test_binary_loss_and_accuracy_on_known_logits():
    task = Task("binary_xor", 2, T=6)
    data = make_batch(task, 3, torch.Generator().manual_seed(3))
    y = data.targets
    loss, acc = task_loss(task, 20 * (2 * y - 1), data)        # confident and right: accuracy 1, loss ~ e^-20
    assert acc == 1.0 and loss.item() < 1e-8
    loss, acc = task_loss(task, -20 * (2 * y - 1), data)       # confident and wrong: accuracy 0, loss ~ 20
    assert acc == 0.0 and loss.item() == pytest.approx(20, rel=1e-3)
    loss, acc = task_loss(task, torch.zeros_like(y), data)     # logit 0: p = 1/2, loss ln 2
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


# -- training --------------------------------------------------------------------------------------
def test_training_learns_the_copy_task_at_a_small_delay():
    # d = 2 needs a 2-step memory, which a 16-unit tanh RNN learns in a few hundred Adam steps (measured:
    # test MSE ~5e-4 after 300 steps); the criterion is 10 % of the trivial predictor's MSE 1/12
    task = Task("copy", 2, T=30)
    result = train_task(task_model(task, latent_dim=16, seed=0), task, epochs=300, lr=1e-2, test_batch=64, seed=0)
    assert result.test_loss[0] > SUCCESS_FRACTION * task.trivial_loss      # it did not start solved
    assert result.success, str(result)
    assert len(result.train_loss) == 300 and result.epoch[-1] == 300


def test_preflossing_moves_lambda_1_towards_zero():
    # "Gradient Flossing" Fig. 1B: flossing reaches lambda_1 targets in < 100 updates. A g = 0.5 net driven
    # by the task's inputs has lambda_1 ≈ ln 0.5 < 0 per step (stable origin, digest §5); preflossing
    # towards 0 must bring lambda_1 (measured independently by lyapunov_spectrum, same input statistics) closer to 0
    task = Task("copy", 5, T=60)
    model = task_model(task, latent_dim=12, g=0.5, seed=1)

    def lam1():
        inputs = lambda n, b, g: sample_inputs(task, n, b, g)   # noqa: E731
        return lyapunov_spectrum(model, k=1, n_steps=1500, transient=200, z0=torch.zeros(1, 12),
                                 inputs=inputs, seed=4).values[0]

    before = lam1()
    result = train_task(model, task, epochs=0, prefloss_epochs=60, floss_k=2, floss_lr=0.02, floss_steps=40)
    after = lam1()
    assert before < -0.3                                   # ln 0.5 = -0.69 at init, input saturation lowers it further
    # measured |after| / |before| = 0.005 .. 0.028 (model seeds 1..3; default and MKL_CBWR=COMPATIBLE
    # ATEN_CPU_CAPABILITY=default): bound 0.1 = 3.6x the worst (was 0.5)
    assert abs(after) < 0.1 * abs(before), (before, after)
    assert result.floss_epoch == [0] and len(result.floss_lambda[0]) == 2


def test_flossing_episodes_run_at_the_scheduled_epochs():
    task = Task("binary_xor", 2, T=12)
    model = task_model(task, latent_dim=6, seed=0)
    result = train_task(model, task, epochs=10, prefloss_epochs=2, floss_at=(0, 3), floss_every=4, floss_epochs=1,
                        floss_k=2, test_batch=8, eval_every=5)
    assert result.floss_epoch == [0, 3, 4, 8]              # preflossing replaces the episode at 0
    assert result.epoch == [0, 5, 10] and len(result.test_accuracy) == 3


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,match", [
    (("copy", 300), "delay d = 300 leaves no step"),
    (("copy", 400), "delay d = 400 leaves no step"),
    (("xor", 5), "must be even"),
    (("binary_xor", 7), "must be even"),
    (("copyy", 3), "unknown task 'copyy'; use one of copy, xor, binary_xor, spatial_xor"),
    (("copy", 0), "delay must be a positive integer"),
])
def test_bad_task_settings(args, match):
    with pytest.raises(ConfigError, match=match) as err:
        Task(*args, T=300)
    assert "\n" not in str(err.value)


def test_bad_training_settings():
    task = Task("copy", 2, T=10)
    with pytest.raises(ConfigError, match="floss_k = 20 must be between 1 and the model's 8 units"):
        train_task(task_model(task, latent_dim=8), task, epochs=1, prefloss_epochs=1, floss_k=20)
    with pytest.raises(ConfigError, match="reads 1 inputs but task spatial_xor has 3"):
        train_task(task_model(task, latent_dim=8), Task("spatial_xor", 2, T=10), epochs=1)
    with pytest.raises(ConfigError, match="episode at epoch 10 but training has 10 epochs"):
        train_task(task_model(task, latent_dim=8), task, epochs=10, floss_at=(0, 10), floss_k=2)
    with pytest.raises(ConfigError, match="epochs must be an integer >= 0"):
        train_task(task_model(task, latent_dim=8), task, epochs=-1)


@pytest.mark.slow
def test_preflossing_rescues_the_copy_task_at_delay_20():
    # "Gradient Flossing" §6, Fig. 3C: without flossing, training fails beyond d ≈ 20, with preflossing it
    # works at d = 40. Reduced setting of benchmarks/bench_flossing.py (N = 32, T = 100, 2000 epochs, lr 3e-3,
    # 100 preflossing updates on k = 16), where d = 20 is past what plain training reaches in that budget
    # (benchmark: 1/5 seeds plain, 5/5 preflossed). ~4 min on 2 busy cores.
    task = Task("copy", 20, T=100)
    ok = {}
    for pre in (0, 100):
        ok[pre] = [train_task(task_model(task, latent_dim=32, seed=s), task, epochs=2000, lr=3e-3, prefloss_epochs=pre,
                              floss_k=16, floss_lr=1e-2, test_batch=256, seed=s).success for s in range(3)]
    assert sum(ok[100]) >= 2 and sum(ok[100]) > sum(ok[0]), ok


# -- issue 12: every task setting has a range, checked before any work ------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(g=float("nan")), r"task_model: g must be a finite number in \[0, 100\], got nan"),
    (dict(g=-1.0), "task_model: g must be"),
    (dict(latent_dim=0), r"task_model: latent_dim must be an integer in \[1, 10,000\], got 0"),
    (dict(seed=2**63), r"task_model: seed must be an integer in \[0, 2\^32\)"),
    (dict(seed=-1), "task_model: seed must be"),
], ids=["g=nan", "g=-1", "latent_dim=0", "seed=2^63", "seed=-1"])
def test_bad_task_model_settings(kw, match):
    with pytest.raises(ConfigError, match=match):
        task_model(Task("copy", 2, T=10), **kw)


@pytest.mark.parametrize("kw, match", [
    (dict(lr=-1.0), "train_task: lr must be a finite number > 0, got -1.0"),
    (dict(lr=float("nan")), "train_task: lr must be a finite number > 0, got nan"),
    (dict(floss_lr=0.0, prefloss_epochs=1, floss_k=2), "floss_lr must be a finite number > 0"),
    (dict(floss_target=float("inf"), prefloss_epochs=1, floss_k=2), "floss_target must be a finite number"),
    (dict(batch=10**8), "batch = 100000000 sequences x T = 10 steps exceeds 10,000,000"),
    (dict(test_batch=0), "test_batch must be an integer >= 1"),
    (dict(seed=2**64), r"seed must be an integer in \[0, 2\^32\)"),
    (dict(floss_k=2.5, prefloss_epochs=1), "floss_k = 2.5 must be between 1"),
    (dict(floss_epochs=0, floss_at=(0,), floss_k=2), "floss_epochs must be an integer >= 1"),
], ids=["lr=-1", "lr=nan", "floss_lr=0", "floss_target=inf", "batch=1e8", "test_batch=0", "seed=2^64",
        "floss_k=2.5", "floss_epochs=0"])
def test_bad_training_settings_are_refused_before_any_work(kw, match):
    task = Task("copy", 2, T=10)
    with pytest.raises(ConfigError, match=match) as err:
        train_task(task_model(task, latent_dim=8), task, epochs=1, **kw)
    assert "\n" not in str(err.value)


def test_task_lengths_are_bounded_and_integral():
    with pytest.raises(ConfigError, match="T = 100000000 steps exceeds 1,000,000"):
        Task("copy", 2, T=10**8)
    with pytest.raises(ConfigError, match="delay must be a positive integer, got nan"):
        Task("copy", float("nan"))
    assert Task("copy", 4.0, T=20.0) == Task("copy", 4, T=20)
