"""An ensemble's candidates in metrics.json: every member scored like the kept one, with the median ± MAD over
members (docs/ensembles.md). Used by :mod:`dsrecon.experiment` after training."""
from __future__ import annotations

from .ensemble import member_summary
from .evaluation import evaluate


def score_members(res, best: int, best_metrics: dict, data, cfg, note) -> dict:
    """``members`` (per member: seed, validation, status and the scores of :func:`dsrecon.evaluation.evaluate`,
    called per member; the kept one's are ``best_metrics``) and ``ensemble`` (size, kept member, median ± MAD of D_stsp, D_H, PSC)
    for metrics.json, with the table in the log."""
    rows = []
    for k, m in enumerate(res.members):
        sc = best_metrics if k == best else evaluate(m.model, data, cfg.eval)[0]
        rows.append({"member": k, "seed": cfg.train.seed + k, "kept": k == best,
                     "val_d_stsp": m.history["best_val_d_stsp"], "best_step": m.history["best_step"],
                     "status": m.stopped, **{n: sc.get(n) for n in ("D_stsp", "D_H", "PSC", "T_gen")},
                     "eval_status": sc.get("status")})
    summary = {n: member_summary([r[n] for r in rows]) for n in ("D_stsp", "D_H", "PSC", "val_d_stsp")}
    fmt = lambda v: "   -   " if v is None else f"{v:7.4f}"  # noqa: E731
    note("member  seed  val_D_stsp  D_stsp     D_H     PSC   status")
    for r in rows:
        note(f"{r['member']:>6} {r['seed']:>5}  {fmt(r['val_d_stsp'])}   {fmt(r['D_stsp'])} {fmt(r['D_H'])} "
             f"{fmt(r['PSC'])}   {r['status']}" + ("  (kept)" if r["kept"] else ""))
    note("median ± MAD over members: " + ", ".join(
        f"{n} {s['median']:.4f} ± {s['mad']:.4f}" for n, s in summary.items() if s["median"] is not None))
    return {"members": rows, "ensemble": {"size": len(rows), "kept_member": best, "kept_seed": cfg.train.seed + best,
                                          "median_mad": summary}}
