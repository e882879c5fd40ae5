#!/bin/bash
# The checks to run on a machine with a CUDA GPU (CI has none), with the package and its
# dependencies installed and the shared data beside the checkout (../shared/data):
# the core tests (they train on the GPU there), the demo, seconds per step, GPU memory over
# train/stop cycles, and the partial-class benchmark budgeted by steps.
#     bash scripts/gpu_check.sh [STEPS ...]      # default: 1500 3000
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -p no:cacheprovider -q -ra tests/core
python3 -m napari_frugalseg demo | grep -v "%|"
python3 benchmarks/step_speed.py --device cuda --steps 30
python3 benchmarks/gpu_memory.py --cycles 8
for steps in ${@:-1500 3000}; do
  python3 benchmarks/partial_classes.py --steps "$steps" --seeds 0 --methods marginal "all labels"
done
