#!/usr/bin/env bash
# Leave-one-collection-out with the trunk retrained: for each collection C named (default: the three the
# shipped model was trained on), train the shipped recipe (balanced collections, per-collection model
# selection, crossmedia-zh name identities) on the OTHER collections' training writers (split
# runs/split-loco-C.json: C's writers all moved to test), then `benchmarks/loco.py --trunk C=...` fits the
# decision stage on the others and runs the clerk's protocol on C. Resumable: re-running continues a
# run's checkpoint. Writes runs/loco-C/ (gitignored).
#   bash benchmarks/loco_train.sh [MINUTES] [COLLECTION...]    (STEPS=1500 THREADS=2 VARIANTS=1 in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MIN=${1:-30}; shift || true
COLS=("$@"); [ ${#COLS[@]} -gt 0 ] || COLS=(cedar sigcomp2011-dutch bhsig260-hindi)
[ -f runs/split5.json ] || $PY -c "from sigverify.train.datasets import scan_root, split_writers; split_writers(scan_root('../shared/data')).save('runs/split5.json')"
for C in "${COLS[@]}"; do
  $PY - "$C" <<'PY'
import sys
from sigverify.train.datasets import WriterSplit, scan_root
c = sys.argv[1]; s = WriterSplit.load("runs/split5.json"); d = scan_root("../shared/data")
drop = lambda ws: [w for w in ws if w.split("/")[0] != c]
mine = {w for w in d.writers if w.split("/")[0] == c}
WriterSplit(drop(s.train), drop(s.val), sorted(set(drop(s.test)) | mine), s.seed).save(f"runs/split-loco-{c}.json")
PY
  mkdir -p runs/loco-$C
  resume=(); [ -e runs/loco-$C/ckpt.safetensors ] && resume=(--resume)
  [ -e runs/loco-$C/model.safetensors ] || .venv/bin/sigverify-cli train ../shared/data --split runs/split-loco-$C.json \
     --out runs/loco-$C/model.safetensors --name loco-$C --balance --select-per-dataset --name-identities \
     --scan-variants "${VARIANTS:-1}" --steps "${STEPS:-1500}" --time-budget "$MIN" --threads "${THREADS:-2}" --cache-dir cache --checkpoint runs/loco-$C/ckpt \
     --eval-every 150 "${resume[@]}" > runs/loco-$C/train.log 2>&1
done
