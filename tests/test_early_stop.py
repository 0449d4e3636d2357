"""Work that stops when it is done (issue 22, part 1): training stops after ``train.early_stop`` validations without
improvement, and a fit's candidates are chosen by successive halving (``train.halving`` validations per rung).

The validation scores are scripted (``dsrecon.train.validation_score`` monkeypatched with a table of step → D_stsp
per member), so where training must stop and which member must be kept are known exactly: the best step plus the
patience, and the lowest scripted score.
"""
import math
import sys

import numpy as np
import pytest
import torch

from dsrecon.config import TrainConfig
from dsrecon.ensemble import Ensemble, best_member, halving_survivors
from dsrecon.models import PLRNN
from dsrecon.train import Interrupted, train_loop

TINY = dict(steps=100, batch_size=4, seq_len=20, checkpoint_every=10, validate_every=5, val_len=100, val_runs=1,
            device="cpu", method="stf")


@pytest.fixture(scope="module")
def x():
    t = np.arange(1500) * 0.1
    return np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.7 * t + 1)]).astype(np.float32)


def scripted(table, interrupt_at=None):
    """A stand-in for validation_score: member k's score at a step is ``table(k, step)``; the members scored
    are those whose generators are passed (found by identity in train_loop's frame). ``interrupt_at``: a Ctrl-C
    at the validation of that step."""
    calls = []

    def score(model, x_val, cfg, gen, s_val=None):
        frame = sys._getframe(1).f_locals
        step, members = frame["step"], frame["members"]
        if step == interrupt_at:
            raise KeyboardInterrupt
        which = {id(m.gen): k for k, m in enumerate(members)}
        ks = [which[id(g)] for g in (gen if isinstance(gen, list) else [gen])]
        calls.append((step, ks))
        out = [table(k, step) for k in ks]
        return out if isinstance(gen, list) else out[0]

    score.calls = calls
    return score


SINGLE = {5: 1.0, 10: 0.5, 15: 0.4, 20: 0.6, 25: 0.45, 30: 0.41, 35: 0.1, 40: 0.05}   # best 0.4 at step 15


def single_table(k, step):
    return SINGLE.get(step, 0.01)


def test_training_stops_at_best_step_plus_patience(x, monkeypatch, caplog):
    import dsrecon.train as train_mod

    monkeypatch.setattr(train_mod, "validation_score", scripted(single_table))
    cfg = TrainConfig(**{**TINY, "early_stop": 3})
    with caplog.at_level("INFO", logger="dsrecon"):
        res = train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, progress=False)
    # the best (0.4) at step 15, then 3 validations without improvement: 20, 25, 30
    assert res.steps_done == 15 + 3 * 5 and res.history["best_step"] == 15
    assert res.stopped == "early stop" and res.history["stopped"] == "early stop"
    assert "stopped improving" in res.history["stop_reason"]
    stop_lines = [r.message for r in caplog.records if r.message.startswith("training stopped")]
    assert len(stop_lines) == 1 and "early stop" in stop_lines[0] and "step 30" in stop_lines[0]


def test_a_run_that_is_not_done_goes_to_its_steps(x, monkeypatch):
    import dsrecon.train as train_mod

    monkeypatch.setattr(train_mod, "validation_score", scripted(lambda k, step: 1.0 / step))   # always improving
    cfg = TrainConfig(**{**TINY, "steps": 40, "early_stop": 3})
    res = train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, progress=False)
    assert res.steps_done == 40 and res.stopped == "completed" and res.history["stopped"] == "completed"


def test_resume_after_an_interrupt_keeps_the_same_stop(x, monkeypatch, tmp_path):
    import dsrecon.train as train_mod

    cfg = TrainConfig(**{**TINY, "early_stop": 3})
    monkeypatch.setattr(train_mod, "validation_score", scripted(single_table))
    ref = train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, progress=False)
    ck = tmp_path / "last.pt"
    # Ctrl-C at step 25: the checkpoint of step 20 holds one validation without improvement (step 20's)
    monkeypatch.setattr(train_mod, "validation_score", scripted(single_table, interrupt_at=25))
    with pytest.raises(Interrupted):
        train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, checkpoint=ck, progress=False)
    monkeypatch.setattr(train_mod, "validation_score", scripted(single_table))
    res = train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, checkpoint=ck, resume=True, progress=False)
    assert res.steps_done == ref.steps_done == 30 and res.stopped == "early stop"
    assert res.history["best_step"] == ref.history["best_step"] == 15
    assert res.history["val_d_stsp"] == ref.history["val_d_stsp"]
    assert res.history["stop_reason"] == ref.history["stop_reason"] and "stopped improving" in ref.history["stop_reason"]
    for a, b in zip(res.model.state_dict().values(), ref.model.state_dict().values()):
        assert torch.equal(a, b)
    # resumed once more from the checkpoint written when it stopped: no further step
    again = train_loop(PLRNN(3, 6, seed=0), x, tau=5, config=cfg, checkpoint=ck, resume=True, progress=False)
    assert again.steps_done == 30 and again.stopped == "early stop"


# four candidates; lower is better. After rung 1 (validations at 5, 10): bests 0.9, 0.3, 0.5, 0.8 -> 1 and 2 go on;
# after rung 2 (15, 20): member 2 reaches 0.2, member 1 0.27 -> member 2 alone. Member 3 would have become
# the best at step 25 (0.01): successive halving never sees it.
CANDIDATES = {0: {5: 0.9, 10: 1.0}, 1: {5: 0.3, 10: 0.29, 15: 0.28, 20: 0.27},
              2: {5: 0.6, 10: 0.5, 15: 0.2, 20: 0.25, 25: 0.15, 30: 0.3, 35: 0.3, 40: 0.3},
              3: {5: 0.8, 10: 0.9, 25: 0.01}}


def candidate_table(k, step):
    return CANDIDATES[k].get(step, 0.3)


def test_successive_halving_keeps_the_best_validation_member(x, monkeypatch, caplog):
    import dsrecon.train as train_mod

    score = scripted(candidate_table)
    monkeypatch.setattr(train_mod, "validation_score", score)
    cfg = TrainConfig(**{**TINY, "early_stop": 3, "halving": 2})
    with caplog.at_level("INFO", logger="dsrecon"):
        res = train_loop(Ensemble(PLRNN(3, 6, seed=0), 4), x, tau=5, config=cfg, progress=False, candidates=True)
    status = res.history["status"]
    assert status[:2] == ["dropped at step 10", "dropped at step 20"] and status[3] == "dropped at step 10"
    assert status[2] == "early stop" and res.steps_done == 25 + 3 * 5   # member 2: best 0.15 at 25, patience 3
    assert best_member(res) == 2 and res.history["best_val_d_stsp"][2] == 0.15
    # a dropped member is neither stepped nor validated after its rung, and keeps its best state
    assert [ks for step, ks in score.calls if step in (5, 10)] == [[0, 1, 2, 3]] * 2
    assert all(ks == [1, 2] for step, ks in score.calls if step in (15, 20))
    assert all(ks == [2] for step, ks in score.calls if step > 20)
    assert res.members[0].history["step"][-1] == 10 and res.members[1].history["step"][-1] == 20
    assert len(res.members[3].history["val_d_stsp"]) == 2 and res.members[3].history["best_step"] == 5
    rungs = [r.message for r in caplog.records if r.message.startswith("successive halving")]
    assert len(rungs) == 2 and "at step 10: members [1, 2] go on" in rungs[0] and "[0, 3]" in rungs[0]


def test_without_candidates_every_member_trains_to_its_own_stop(x, monkeypatch):
    # a sweep's job (dsrecon.jobs) or a direct call: every member is a result of its own, none is dropped
    import dsrecon.train as train_mod

    monkeypatch.setattr(train_mod, "validation_score", scripted(candidate_table))
    cfg = TrainConfig(**{**TINY, "steps": 30, "early_stop": 0, "halving": 2})
    res = train_loop(Ensemble(PLRNN(3, 6, seed=0), 4), x, tau=5, config=cfg, progress=False)
    assert res.history["status"] == ["completed"] * 4 and res.steps_done == 30


def test_halving_survivors():
    assert halving_survivors({0: 0.9, 1: 0.3, 2: 0.5, 3: 0.8}) == [1, 2]
    assert halving_survivors({0: math.inf, 2: 0.4, 5: math.inf}) == [0, 2]   # 3 -> 2, inf last, ties to lower index
    assert halving_survivors({4: 0.1}) == [4]


def test_the_defaults_stop_and_halve():
    cfg = TrainConfig()
    assert cfg.early_stop > 0 and cfg.halving > 0
