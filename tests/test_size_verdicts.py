"""Issue 23 part 1: verdicts that compare sizes. A free run whose tail is far smaller or larger than the data,
misplaced, or periodic where the data are irregular, fails with one line that says which and by how much.

Oracles are analytic: a copy of the data scaled by r has std and range ratio r in every channel exactly; a run
x·exp(−k/T) has tail std ratio √(mean exp(−2k/T)) over the tail for zero-mean, unit-std x of independent
samples (up to sampling error); N(d, 1) against N(0, 1) has Bhattacharyya coefficient exp(−d²/8)
(Bhattacharyya 1943); a sine recurs exactly at its period; the Lorenz attractor (σ=10, ρ=28, β=8/3) never does.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from dsrecon import verdicts as V
from test_honest_scores import _lorenz


@pytest.fixture(scope="module")
def lorenz():
    return _lorenz(10_000)


def _with_tail(data, tail):
    """A run of 5·len(tail) steps whose last 20 % (the verdicts' tail) is exactly ``tail``."""
    head = np.repeat(data[:1], 4 * len(tail), axis=0)
    return np.concatenate([head, tail])


@pytest.mark.parametrize("r", [0.025, 0.1, 0.19])
def test_shrunken_copy_fails_with_its_ratio(lorenz, r):
    data = lorenz[:2000]
    gen = _with_tail(data, r * data)                  # the tail is the data scaled by r: ratios r exactly
    size = V.size_verdict(gen, data)
    np.testing.assert_allclose(size.spread, r, rtol=1e-9)
    np.testing.assert_allclose(size.range, r, rtol=1e-9)
    assert not size.ok and "shrunk" in size.reason and f"{r:.2g} of the data's" in size.reason
    dyn = V.dynamics_verdict(gen, data)
    assert dyn.verdict == "irregular"                 # what let it through before: an irregular, live run
    status, why = V.run_status(dyn, V.dynamics_verdict(data, data, tail_fraction=1.0), size)
    assert status == "failed" and why.startswith("the free run") and "shrunk" in why


def test_copies_within_a_factor_five_are_ok_and_beyond_fail(lorenz):
    data = lorenz[:2000]
    assert V.size_verdict(_with_tail(data, 0.5 * data), data).ok
    assert V.size_verdict(_with_tail(data, 4.0 * data), data).ok
    big = V.size_verdict(_with_tail(data, 6.0 * data), data)
    assert not big.ok and "inflated" in big.reason and "6 × the data's" in big.reason


def test_decaying_run_fails_though_it_is_no_fixed_point_yet():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((5000, 2))
    k = np.arange(5000)[:, None]
    gen = rng.standard_normal((5000, 2)) * np.exp(-k / 1000.0)
    dyn = V.dynamics_verdict(gen, data)
    assert dyn.verdict not in ("fixed point", "diverged")   # halves fall by e^0.5 < 4: not "converging"
    assert V.run_status(dyn, V.Dynamics("irregular", ""))[0] == "ok"   # the issue-15 rule alone passes it
    size = V.size_verdict(gen, data)
    expect = math.sqrt(np.mean(np.exp(-2 * np.arange(4000, 5000) / 1000.0)))   # 0.0248
    np.testing.assert_allclose(size.spread, expect, rtol=0.15)   # sampling error of 1000 points' std: ~3 %
    status, why = V.run_status(dyn, V.Dynamics("irregular", ""), size)
    assert status == "failed" and "shrunk" in why


def test_cycle_against_irregular_data_fails(lorenz):
    k = np.arange(5000)
    cyc = np.c_[np.sin(2 * np.pi * k / 50), np.cos(2 * np.pi * k / 50), np.sin(4 * np.pi * k / 50)] * math.sqrt(2)
    status, why, dyn, size = V.free_run_verdict(cyc, lorenz)
    assert dyn.verdict == "cycle" and size.ok          # the right size: failed for being periodic alone
    assert status == "failed" and "periodic where the data are irregular" in why and "cycle of 50 steps" in why
    # the weather case: a small copy of a rhythm (2.5 % of the spread); the size is named first
    status, why, dyn, _ = V.free_run_verdict(0.025 * cyc, lorenz)
    assert dyn.verdict == "cycle" and status == "failed" and "shrunk" in why
    # a cycle modelled by a cycle is fine
    assert V.free_run_verdict(cyc, cyc)[0] == "ok"


def test_density_overlap_is_bhattacharyya():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((5000, 1))
    for d in (1.0, 2.0, 3.0):
        ov = V.size_verdict(rng.standard_normal((20_000, 1)) + d, data).overlap[0]
        assert ov == pytest.approx(math.exp(-d * d / 8), abs=0.03)   # 30-bin estimate: within ~0.01 measured
    far = V.size_verdict(rng.standard_normal((20_000, 1)) + 6.0, data)
    assert not far.ok and "misplaced" in far.reason


def test_lorenz_run_of_the_right_size_is_ok(lorenz):
    status, why, dyn, size = V.free_run_verdict(lorenz[5000:], lorenz[:5000], lambda_max=0.906)
    assert status == "ok" and why == "" and size.ok and dyn.verdict == "irregular"


def test_lyapunov_note_when_lambda_disagrees_with_the_tail():
    cyc = V.Dynamics("cycle", "", period=50, tail=1000)
    assert "disagrees with the tail's cycle" in V.lyapunov_note(cyc, 0.0084)       # the weather run's numbers
    assert V.lyapunov_note(cyc, 0.0084, stderr=0.01) == ""     # within 2 standard errors of 0: no claim
    assert V.lyapunov_note(V.Dynamics("irregular", "", tail=1000), 0.9) == ""
    assert "transient" in V.lyapunov_note(V.Dynamics("irregular", "", tail=1000), -0.5)


# ------------------------------------------------------------------------ in a run
def test_report_says_what_tau_did():
    from dsrecon.report import tau_text

    cfg = {"train": {"method": "gtf", "gtf_alpha": 0.1}}
    text = tau_text({"tau": None, "tau_source": "lambda_max"}, cfg, {"tau_steps": 17, "tau_source": "lambda_max"})
    assert text == "τ_pred = 17 steps estimated (lambda max), not used by gtf with fixed α = 0.1"
    assert tau_text({"tau": 12, "tau_source": "lambda_max"}, {"train": {"method": "stf"}}, None) == \
        "12 steps (lambda max)"


def test_evaluate_compares_a_card_model_spectrum_with_the_true_one():
    import dsrecon as ds
    from dsrecon import evaluation
    from dsrecon.config import EvalConfig

    data = ds.load("lorenz", n_train=2000, n_test=1000, transient=1000, cache=False)
    model = ds.PLRNN(obs_dim=3, latent_dim=6, seed=0)
    cfg = EvalConfig(t_gen=1000, lyap_steps=50, lyap_transient=10, lyap_qr_every=5)
    m, _ = ds.evaluate(model, data, cfg, prediction=False, lyapunov_k=3, legacy=False)
    sp = m["scores"]["model_spectrum"]
    assert math.isfinite(sp["value"]) and len(sp["extra"]["reference"]) == 3    # no "nan: no reference"
    assert sp["extra"]["reference"][0] > 0 and "card's equations" in sp["variant"]["reference"]
    assert "size" in m["dynamics"] and m["status"] in ("ok", "failed")
    rec, note = evaluation.card_reference_spectrum(data.assign_attrs(kind="recording"), cfg)
    assert rec is None and "no true equations" in note


def test_card_reference_spectrum_is_kept_on_disk(tmp_path, monkeypatch):
    """The true spectrum is a function of the card and the recipe: computed once per cache, read back exactly,
    and computed anew when the cached file is damaged."""
    import dsrecon as ds
    from dsrecon import evaluation as E
    from dsrecon.lyapunov import LyapunovSpectrum

    monkeypatch.setenv("DSRECON_CACHE_DIR", str(tmp_path))
    calls = []

    def fake(name, **kw):
        calls.append(name)
        return LyapunovSpectrum(values=np.array([0.015, 0.0, -0.22]), dt=0.01, stderr=np.full(3, np.nan),
                                running=np.zeros((2, 3)), running_steps=np.array([500, 1000]), n_steps=1000, n_init=1)

    monkeypatch.setattr(E.data_mod, "true_spectrum", fake)
    data = ds.load("lorenz", n_train=2000, n_test=1000)
    for _ in range(2):
        E._REFERENCES.clear()
        ref, note = E.card_reference_spectrum(data)
        np.testing.assert_array_equal(ref.per_time, [1.5, 0.0, -22.0])
    assert calls == ["lorenz"] and "cached" in note
    (cached,) = (tmp_path / "spectra").iterdir()
    cached.write_text("{")
    E._REFERENCES.clear()
    ref, note = E.card_reference_spectrum(data)
    assert calls == ["lorenz", "lorenz"] and "cached" not in note
