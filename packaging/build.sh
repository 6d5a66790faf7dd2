#!/usr/bin/env bash
# Build the one-folder bundle dist/sigverify/ (sigverify + sigverify-cli) with PyInstaller.
#   packaging/build.sh            use $VENV (default .venv), creating it if missing
#   packaging/build.sh lite       the verify-only lean bundle dist/sigverify-lite/ (onnxruntime, no torch/Qt)
#   VENV=/path/venv packaging/build.sh
# A fresh venv gets CPU-only torch (from the PyTorch CPU index unless TORCH_INDEX_URL is set) so no
# CUDA libraries end up in the bundle.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" && ! -x "$VENV/Scripts/python.exe" ]]; then
    echo "== creating venv $VENV"
    "$PY" -m venv "$VENV"
    VPY="$VENV/bin/python"; [[ -x "$VPY" ]] || VPY="$VENV/Scripts/python.exe"
    "$VPY" -m pip install --upgrade pip
    "$VPY" -m pip install torch --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
    "$VPY" -m pip install -e ".[bundle]"
fi
VPY="$VENV/bin/python"; [[ -x "$VPY" ]] || VPY="$VENV/Scripts/python.exe"
TARGET="${1:-full}"

if ! "$VPY" -c "import PyInstaller" 2>/dev/null; then
    echo "== installing pyinstaller"
    "$VPY" -m pip install "pyinstaller>=6.0"
fi
if "$VPY" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)"; then
    echo "warning: this torch is a CUDA build; the bundle will carry CUDA libraries (hundreds of MB)." >&2
fi

echo "== pyinstaller $("$VPY" -m PyInstaller --version)"
start=$(date +%s)
if [[ "$TARGET" == "lite" ]]; then
    "$VPY" -c "import onnxruntime" 2>/dev/null || "$VPY" -m pip install "onnxruntime>=1.17"
    [[ -f assets/models/sigverify-base.onnx ]] || \
        "$VPY" -c "import sys; from sigverify.cli import main; sys.exit(main(['export', '--out', 'assets/models/sigverify-base.onnx']))"
    "$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller-lite" packaging/sigverify-lite.spec
    echo "== built $ROOT/dist/sigverify-lite in $(( $(date +%s) - start )) s, size $(du -sh "$ROOT/dist/sigverify-lite" | cut -f1)"
    exit 0
fi
"$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/sigverify.spec
echo "== built $ROOT/dist/sigverify in $(( $(date +%s) - start )) s, size $(du -sh "$ROOT/dist/sigverify" | cut -f1)"
