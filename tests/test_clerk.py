"""The clerk's protocol (EVALUATION.md), same-name identities and collection-balanced sampling."""

from __future__ import annotations

import numpy as np

from sigverify.train.cache import CachedSet
from sigverify.train.clerk import clerk_protocol, trials
from sigverify.train.identities import name_identities
from sigverify.train.trainer import PKSampler, TrainConfig


def _cs(writers, genuine, paths=None, datasets=None):
    n = len(writers)
    paths = paths or [f"/d/{w}/{i}.png" for i, w in enumerate(writers)]
    return CachedSet(
        np.zeros((n, 4, 4), np.uint8),
        np.array(writers),
        np.array(genuine, bool),
        np.array(datasets or ["x"] * n),
        np.array(paths),
        np.array([f"h{i}" for i in range(n)]),
        [],
    )


def test_trials_follow_the_protocol():
    # writer a: 6 genuine + 2 forgeries; writer b: 3 genuine (too few for K=5), writer c: 7 genuine
    w = ["a"] * 8 + ["b"] * 3 + ["c"] * 7
    g = [True] * 6 + [False] * 2 + [True] * 3 + [True] * 7
    rows = list(trials(np.array(w), np.array(g), 5))
    writers = {r[0] for r in rows}
    assert writers == {"a", "c"}  # b has fewer than K+1 genuine images
    for wr, kind, q, spec in rows:
        assert len(spec) == 5 and q not in spec and all(w[s] == wr and g[s] for s in spec)
        if kind == "genuine":
            assert w[q] == wr and g[q]
        elif kind == "skilled":
            assert w[q] == wr and not g[q]
        else:
            assert w[q] != wr and g[q]
    n = {k: sum(1 for r in rows if r[0] == "a" and r[1] == k) for k in ("genuine", "skilled", "random")}
    assert n == {"genuine": 1, "skilled": 2, "random": 1}
    assert rows == list(trials(np.array(w), np.array(g), 5))  # seeded


def test_clerk_protocol_rates_come_from_the_decision():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8))
    emb, w, g = [], [], []
    for i, c in enumerate(centres):
        for _ in range(7):
            emb.append(c + 0.05 * rng.normal(size=8))
            w.append(f"w{i}")
            g.append(True)
        for _ in range(3):  # forgeries: halfway to another writer
            emb.append(0.5 * c + 0.5 * centres[(i + 1) % 6])
            w.append(f"w{i}")
            g.append(False)
    emb = np.array(emb)

    def decide(q, refs):
        d = float(np.linalg.norm(refs - q, axis=1).mean())
        return ("genuine" if d < 0.5 else "forgery" if d > 1.0 else "refer"), d

    out = clerk_protocol(emb, np.array(w), np.array(g), decide, (1, 5))
    r = out["5"]
    assert r["writers"] == 6 and r["questioned"] == {"genuine": 12, "skilled": 18, "random": 12}
    assert r["eer"] == 0.0 and r["genuine_accepted"] == 1.0 and r["skilled_accepted"] == 0.0
    assert abs(r["genuine_accepted"] + r["genuine_referred"] + r["genuine_rejected"] - 1) < 1e-9

    def always_refer(q, refs):
        return "refer", 0.0

    r = clerk_protocol(emb, np.array(w), np.array(g), always_refer, (3,))["3"]
    assert r["genuine_referred"] == 1.0 and r["skilled_referred"] == 1.0 and r["eer"] == 0.5


def test_name_identities_relabel_and_add_same_name_negatives():
    paths, w = [], []
    for writer in ("001", "002", "003"):
        for name in ("name01", "name02"):
            for medium in ("paper", "ipad"):
                paths.append(f"/crossmedia-zh/{writer}/genuine/{name}_{medium}_01.png")
                w.append(f"crossmedia-zh/{writer}")
    cs = _cs(w, [True] * len(w), paths, ["crossmedia-zh"] * len(w))
    out = name_identities(cs, negatives_per_identity=3, seed=0)
    gen = out.writers[out.genuine]
    assert set(gen) == {f"crossmedia-zh/{x}#name0{k}" for x in ("001", "002", "003") for k in (1, 2)}
    forg = ~out.genuine
    assert forg.sum() == 6 * 3  # 6 identities, 3 same-name images of other writers each (4 available)
    for ident, p in zip(out.writers[forg], out.paths[forg]):
        writer, name = ident.split("#")
        assert f"/{writer.split('/')[1]}/" not in p and f"/{name}_" in p
    other = _cs(["cedar/1", "cedar/1"], [True, False])
    assert name_identities(other) is other


def test_balanced_sampler_gives_each_collection_the_same_share():
    w = [f"big/{i}" for i in range(40) for _ in range(3)] + [f"small/{i}" for i in range(4) for _ in range(3)]
    ds = [x.split("/")[0] for x in w]
    cs = _cs(w, [True] * len(w), None, ds)
    counts = {}
    for balance in (False, True):
        s = PKSampler(
            cs, TrainConfig(writers_per_batch=4, balance_datasets=balance, forgeries_per_writer=0), np.random.default_rng(0)
        )
        n_small = 0
        for _ in range(300):
            _, _, _, ws = s.batch()
            n_small += sum(s.writers[i].startswith("small") for i in ws)
        counts[balance] = n_small / (300 * 4)
    assert counts[False] < 0.2  # 4 of 44 writers
    assert 0.35 < counts[True] < 0.65


def _eval_json(capsys, args):
    import json

    from sigverify.cli import main

    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_cli_reports_the_clerks_protocol_per_k(tmp_path, capsys):
    from tests.helpers import make_set

    root = make_set(tmp_path / "bank", n_writers=4, n_gen=5, n_forg=2)
    d = _eval_json(capsys, ["eval", str(root), "--references", "1", "3", "--json", "--quiet"])
    refs = d["references"]
    assert set(refs) == {"1", "3"}
    r = refs["3"]
    assert r["writers"] == 4 and r["questioned"] == {"genuine": 8, "skilled": 8, "random": 8}
    for kind in ("genuine", "skilled"):
        total = sum(r[f"{kind}_{z}"] for z in ("accepted", "referred", "rejected"))
        assert abs(total - 1.0) < 1e-9
    assert d["policy"] == "writer"  # the shipped card's default policy decided it


def test_eval_cli_works_on_writers_without_forgeries(tmp_path, capsys):
    from tests.helpers import make_set

    root = make_set(tmp_path / "noforg", n_writers=4, n_gen=4, n_forg=0)
    d = _eval_json(capsys, ["eval", str(root), "--references", "1", "--json", "--quiet"])
    assert d["eer"] is None and d["eer_random"] is not None  # no skilled pairs: undefined, not a crash
    r = d["references"]["1"]
    assert r["eer"] is None and r["skilled_accepted"] is None and r["questioned"]["skilled"] == 0
    assert r["genuine_accepted"] is not None
