#!/usr/bin/env bash
# Every GPU figure in one prepared run (about 5 minutes on one H100/H200; each step capped):
# scoring, enhancement and metamer throughput on CUDA at ImageNet sizes, and whether per-image
# results are exact there (what incremental and Ray builds rely on). Run from a fresh clone:
#   pip install -e . && bash benchmarks/gpu.sh 2>&1 | tee gpu.log
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
step() { echo; echo "+ $*"; timeout 100 python "$@" || echo "  (step failed or ran past 100 s)"; }
step bench_score.py --arch resnet50 --size 224 --channels 3 --n 4096 --batch 256 --device cuda --repeats 2
step bench_enhance.py --arch resnet50 --size 224 --n 256 --batch-size 128 --device cuda --repeats 1
step bench_metamers.py --arch resnet18 --channels 3 --size 224 --layer layer3 --n 64 --steps 50 --repeats 2 --device cuda
step bench_metamers.py --arch smallcnn-tiny --n 256 --steps 100 --repeats 2 --device cuda
step exactness.py --arch resnet50 --size 224 --batch 64 --device cuda
step exactness.py --arch smallcnn --size 32 --batch 256 --device cuda
