#!/usr/bin/env bash
# The seeds' experiments in the README, one command each, then the sheets as JPEG for the docs.
# Run from the repository root: bash docs/seeds.sh (about 3 minutes on 2 cores).
set -euo pipefail
out=$(mktemp -d)
inceptionism sweep sample:coffee --preset keras-classic --vary steps=10,100 --vary step-size=0.1,0.001 --max-size 192 --cell-size 160 -q -f -o "$out/seed-experiment.png"
inceptionism dream --preset tf1-naive --layers block12:65 --size 224x224 -q -f -o docs/seed-tf1-naive.jpg
inceptionism dream --preset tf1-lapnorm --layers block12:65 --size 224x224 -q -f -o docs/seed-tf1-lapnorm.jpg
inceptionism sweep sample:coffee --preset keras-classic --vary "layers=block3;block6;block9;block12;block15;block18" --keep-small-maps --max-size 192 --cell-size 128 -q -f -o "$out/seed-layers.png"
for name in seed-experiment seed-layers; do
  python -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], quality=85)" "$out/$name.png" "docs/$name.jpg"
done
