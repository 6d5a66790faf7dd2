#!/usr/bin/env bash
# Smoke test of the PyInstaller bundle:
#   1. build dist/sigverify/ (packaging/build.sh) unless SKIP_BUILD=1
#   2. start the GUI with --screenshot under QT_QPA_PLATFORM=offscreen; check the PNG is non-empty
#      (reported as SKIPPED when the bundle has no GUI executable)
#   3. run sigverify-cli compare from inside the bundle on two shipped samples; check its JSON
#   4. print bundle size and start times
# Exit status 0 only if every part that ran passed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="$ROOT/dist/sigverify"
VENV="${VENV:-$ROOT/.venv}"
HOSTPY="$VENV/bin/python"; [[ -x "$HOSTPY" ]] || HOSTPY="$(command -v python3)"
fail=0

if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
    bash "$ROOT/packaging/build.sh" || { echo "FAIL: build"; exit 1; }
fi
[[ -x "$DIST/sigverify-cli" ]] || { echo "FAIL: $DIST/sigverify-cli missing"; exit 1; }

SAMPLES="$DIST/_internal/assets/samples"
[[ -d "$SAMPLES" ]] || SAMPLES="$DIST/assets/samples"
REF="$SAMPLES/alice_ref1.png"
Q="$SAMPLES/alice_questioned_genuine.png"
for f in "$REF" "$Q"; do [[ -s "$f" ]] || { echo "FAIL: sample $f not in the bundle"; exit 1; }; done
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
export SIGVERIFY_HOME="$TMP/home"   # never touch the user's real settings / library

now() { "$HOSTPY" -c 'import time; print(time.time())'; }
elapsed() { "$HOSTPY" -c "print(f'{$2 - $1:.2f}')"; }

# ---- GUI ------------------------------------------------------------------------------------------
GUI_RESULT="SKIPPED (no GUI executable in the bundle)"
if [[ -x "$DIST/sigverify" ]]; then
    SHOT="$TMP/shot.png"
    t0=$(now)
    QT_QPA_PLATFORM=offscreen timeout 120 "$DIST/sigverify" --reference "$REF" --questioned "$Q" \
        --screenshot "$SHOT" >"$TMP/gui.out" 2>"$TMP/gui.err"
    rc=$?
    t1=$(now)
    if [[ $rc -eq 0 && -s "$SHOT" ]] && "$HOSTPY" - "$SHOT" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]); im.load()
w, h = im.size
extrema = im.convert("L").getextrema()
assert w >= 200 and h >= 200, (w, h)
assert extrema[0] != extrema[1], "screenshot is a single flat colour"
print(f"screenshot {w}x{h}")
PY
    then
        GUI_RESULT="OK: screenshot $(stat -c %s "$SHOT" 2>/dev/null || wc -c <"$SHOT") bytes, start+compare+screenshot $(elapsed "$t0" "$t1") s"
    else
        GUI_RESULT="FAIL (exit $rc): $(tail -n 5 "$TMP/gui.err" | tr '\n' ' ')"
        fail=1
    fi
fi

# ---- CLI ------------------------------------------------------------------------------------------
t0=$(now)
"$DIST/sigverify-cli" compare "$REF" "$Q" --json >"$TMP/cli.json" 2>"$TMP/cli.err"
rc=$?
t1=$(now)
CLI_TIME=$(elapsed "$t0" "$t1")
if [[ $rc -le 2 ]] && "$HOSTPY" - "$TMP/cli.json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
for k in ("verdict", "distance", "score", "metric", "model"):
    assert k in d, f"missing {k}: {d}"
assert d["verdict"] in ("genuine", "refer", "forgery"), d["verdict"]
assert math.isfinite(d["distance"]) and d["distance"] >= 0
print(f"verdict {d['verdict']}, distance {d['distance']:.4f}, model {d['model']}")
PY
then
    CLI_RESULT="OK (exit $rc, ${CLI_TIME} s for a cold compare)"
else
    CLI_RESULT="FAIL (exit $rc): $(tail -n 5 "$TMP/cli.err" | tr '\n' ' ')"
    fail=1
fi
# an error path from inside the bundle: a missing file must give exit code 4 and a message
"$DIST/sigverify-cli" compare "$TMP/nope.png" "$Q" >/dev/null 2>"$TMP/err.txt"
rc=$?
if [[ $rc -eq 4 ]] && grep -q "no such file" "$TMP/err.txt"; then ERR_RESULT="OK (exit 4)"; else ERR_RESULT="FAIL (exit $rc)"; fail=1; fi

t0=$(now); "$DIST/sigverify-cli" --version >/dev/null 2>&1; t1=$(now)

echo "== smoke test of $DIST"
echo "bundle size:          $(du -sh "$DIST" | cut -f1) ($(du -sb "$DIST" | cut -f1) bytes, $(find "$DIST" -type f | wc -l) files)"
echo "cli --version start:  $(elapsed "$t0" "$t1") s"
echo "GUI screenshot:       $GUI_RESULT"
echo "CLI compare:          $CLI_RESULT"
echo "CLI missing file:     $ERR_RESULT"
[[ $fail -eq 0 ]] && echo "SMOKE OK" || echo "SMOKE FAILED"
exit $fail
