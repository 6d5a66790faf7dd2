"""Fit the app's decision stage on validation writers: the cohort and per-policy, per-K thresholds.

The thresholds a clerk sees are fitted on the *decision* the app makes (questioned vs K specimens,
the clerk's protocol of EVALUATION.md), not on single pairs: the accept threshold is the largest score
whose skilled-forgery accept rate is at most ``far_target`` and the reject threshold the smallest whose
genuine reject rate is at most ``frr_target`` (between them: refer). Every score goes through
``verify.reference.verify_against_references`` — the function the GUI, the CLI, the library and batch
decide with — so the fitted thresholds are exactly those the app applies.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sigverify.model.card import MetricCalibration, ModelCard
from sigverify.train.cache import CachedSet
from sigverify.train.clerk import clerk_protocol, clerk_scores
from sigverify.verify.calibration import fit_calibration
from sigverify.verify.reference import verify_against_references
from sigverify.verify.writer import Cohort

#: Operating targets (chosen for a bank: a forgery shown as genuine is the costly error).
FAR_TARGET = 0.02
FRR_TARGET = 0.03
FIT_KS = (1, 3, 5)
#: Writer-dependent stage settings, chosen on validation writers (benchmarks/decision_study.py).
COHORT_REG = 0.3
COHORT_MIX = 0.5
COHORT_SIZE = 400


def pick_cohort(emb: np.ndarray, cs: CachedSet, n: int = COHORT_SIZE, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Genuine embeddings of ``cs``'s writers (training writers), balanced over collections."""
    rng = np.random.default_rng(seed)
    idx = np.nonzero(cs.genuine)[0]
    dss = sorted(set(map(str, cs.datasets[idx])))
    take = []
    for d in dss:
        pool = idx[cs.datasets[idx] == d]
        take.append(rng.choice(pool, min(len(pool), max(1, n // len(dss))), replace=False))
    sel = np.concatenate(take) if take else np.zeros(0, int)
    return emb[sel], dss


def _decider(
    cal: MetricCalibration,
    metric: str,
    policy: str,
    cohort: Cohort | None,
    mix: float,
    decision_cal: MetricCalibration | None = None,
):
    def decide(q, refs):
        d = verify_against_references(q, refs, cal, metric, policy, True, decision_cal=decision_cal, cohort=cohort, mix=mix)
        return d.verdict.zone, float(d.decision_score)

    return decide


def fit_decisions(
    emb: np.ndarray,
    val: CachedSet,
    pair_cal: dict,
    cohort: Cohort | None,
    *,
    policies=("mean", "min", "writer"),
    ks=FIT_KS,
    far_target: float = FAR_TARGET,
    frr_target: float = FRR_TARGET,
    mix: float = COHORT_MIX,
) -> dict:
    """{metric: {policy: {K: MetricCalibration dict + "expected" validation verdict rates}}}."""
    out: dict = {}
    for metric, c in pair_cal.items():
        cal = MetricCalibration.from_dict(c)
        out[metric] = {}
        for policy in policies:
            if policy == "writer" and cohort is None:
                continue
            by_k = {}
            for k in ks:
                dec = _decider(cal, metric, policy, cohort, mix)
                sc, _, n = clerk_scores(emb, val.writers, val.genuine, dec, k, val.digests)
                if not n or not len(sc["genuine"]):
                    continue
                fit = fit_calibration(sc["genuine"], sc["skilled"], sc["random"], far_target, frr_target)
                fit.ref_spread = cal.ref_spread
                exp = clerk_protocol(
                    emb, val.writers, val.genuine, _decider(cal, metric, policy, cohort, mix, fit), (k,), val.digests
                ).get(str(k), {})
                d = dict(fit.__dict__)
                d["expected"] = {
                    key: exp.get(key)
                    for key in (
                        "eer",
                        "genuine_accepted",
                        "genuine_referred",
                        "genuine_rejected",
                        "skilled_accepted",
                        "skilled_rejected",
                        "random_accepted",
                    )
                }
                d["expected"]["writers"] = exp.get("writers")
                by_k[str(k)] = d
            if by_k:
                out[metric][policy] = by_k
    return out


def attach_decision(
    card: ModelCard,
    model_path: str | os.PathLike,
    emb_train: np.ndarray,
    trn: CachedSet,
    emb_val: np.ndarray,
    val: CachedSet,
    *,
    far_target: float = FAR_TARGET,
    frr_target: float = FRR_TARGET,
) -> ModelCard:
    """Write the cohort file beside ``model_path`` and put the fitted decision stage on ``card``.
    The cohort file name carries its hash, so an old card never meets a new cohort."""
    from sigverify.hashing import sha256_file
    from sigverify.verify.writer import save_cohort

    cohort_emb, dss = pick_cohort(emb_train, trn)
    cohort = Cohort.from_embeddings(cohort_emb, COHORT_REG)
    tmp = Path(model_path).with_name(Path(model_path).stem + ".cohort.tmp.safetensors")
    save_cohort(tmp, cohort_emb)
    sha = sha256_file(tmp)
    final = Path(model_path).with_name(f"{Path(model_path).stem}.cohort-{sha[:12]}.safetensors")
    os.replace(tmp, final)
    dec = fit_decisions(emb_val, val, card.calibration, cohort, far_target=far_target, frr_target=frr_target)
    dec["default"] = "writer" if any("writer" in v for v in dec.values() if isinstance(v, dict)) else "mean"
    dec["cohort"] = {
        "file": final.name,
        "sha256": sha,
        "n": int(len(cohort_emb)),
        "datasets": dss,
        "reg": COHORT_REG,
        "mix": COHORT_MIX,
        "source": "genuine signatures of training writers",
    }
    dec["targets"] = {"skilled_far": far_target, "genuine_frr": frr_target, "fitted_on": "validation writers"}
    card.decision = dec
    return card
