"""What every rollout engine offers, and the checks that are the same for all of them."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from srlm.config import ModelConfig, SamplingConfig
from srlm.errors import RunDirError, SetupError
from srlm.rundir import read_json

# A fixed text whose log-probabilities the trainer records next to every checkpoint it saves;
# the engine that loads the checkpoint must reproduce them, or it is serving stale weights.
PROBE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Preference optimisation compares a chosen "
    "and a rejected answer to the same question."
)
PROBE_FILE = "probe_logprobs.json"


@dataclass
class Completion:
    text: str
    num_tokens: int
    finish_reason: str  # "stop" | "length"


# model.prompt_format. "chat": the tokenizer's chat template (instruct and chat models).
# "plain": no template, for base models, which have none: the papers that start from a base
# model (Self-Rewarding on Llama-2-70B) give it their prompts as plain text, the user turn
# written "User: ..." (docs/models.md). Turns are blocks separated by a blank line, and the
# prompt ends with "Assistant:" and a newline, where the model's turn begins.
PROMPT_FORMATS = ("chat", "plain")
PLAIN_ROLES = {"system": None, "user": "User:", "assistant": "Assistant:"}


def set_prompt_format(tokenizer, prompt_format: str):
    """Mark `tokenizer` with its model's model.prompt_format; format_prompt reads the mark.

    The engine that serves a model marks its tokenizer (srlm.rollout.engines.make_engine), so
    a judge with a model of its own formats its prompts in that model's format.
    """
    if prompt_format not in PROMPT_FORMATS:
        raise SetupError(f"model.prompt_format={prompt_format!r}: must be one of chat, plain")
    tokenizer.srlm_prompt_format = prompt_format
    return tokenizer


def prompt_format_of(tokenizer) -> str:
    return getattr(tokenizer, "srlm_prompt_format", "chat")


def format_prompt(tokenizer, messages: list[dict], assistant_prefix: str = "") -> str:
    """The prompt text of a conversation that ends with a user turn, ready for the assistant to
    continue, in the format the tokenizer's model takes (set_prompt_format). Every prompt srlm
    generates from or trains on is made here.

    `assistant_prefix` is text the assistant turn starts with (e.g. forcing "Score: ").
    """
    if prompt_format_of(tokenizer) == "plain":
        return plain_prompt(messages, plain_bos(tokenizer)) + assistant_prefix
    # A transformers tokenizer without a template has chat_template None (and recent versions
    # raise a message that does not name the setting); other objects only need the method.
    if hasattr(tokenizer, "chat_template") and not tokenizer.chat_template:
        raise SetupError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', '?')} has no chat template, "
            "and model.prompt_format=chat needs one: a base model takes model.prompt_format=plain"
        )
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + assistant_prefix


def plain_prompt(messages: list[dict], bos: str = "") -> str:
    """The plain format: the system text, then "User: ..." and "Assistant: ..." blocks, then
    "Assistant:" on a line of its own. `bos`: the tokenizer's begin-of-sequence token text,
    which srlm writes itself because prompts are encoded without special tokens."""
    blocks = []
    for m in messages:
        role = m["role"]
        if role not in PLAIN_ROLES:
            raise ValueError(
                f"message role {role!r}: the plain format knows system, user, assistant"
            )
        label = PLAIN_ROLES[role]
        blocks.append(m["content"].strip() if label is None else f"{label}\n{m['content'].strip()}")
    return bos + "\n\n".join([*blocks, "Assistant:"]) + "\n"


def plain_bos(tokenizer) -> str:
    """The begin-of-sequence text the tokenizer puts first when it adds special tokens (Llama's
    "<s>"), or "" when it adds none (SmolLM2, GPT-2 style tokenizers)."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return ""
    ids = tokenizer("x").input_ids
    return tokenizer.bos_token if ids and ids[0] == bos_id else ""


def chat_prompt(tokenizer, user: str, system: str | None = None, assistant_prefix: str = "") -> str:
    """One user turn (after an optional system text) in the model's prompt format."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    return format_prompt(tokenizer, messages, assistant_prefix)


def has_chat_template(model_dir: str | Path) -> bool | None:
    """Whether a model directory's tokenizer comes with a chat template, read from its files
    without loading anything (tokenizer_config.json, or chat_template.jinja/.json beside it, as
    transformers saves them); None when the directory has no tokenizer_config.json to tell."""
    d = Path(model_dir)
    config = d / "tokenizer_config.json"
    if not config.is_file():
        return None
    if (d / "chat_template.jinja").is_file() or (d / "chat_template.json").is_file():
        return True
    if (d / "additional_chat_templates").is_dir() and any(
        (d / "additional_chat_templates").iterdir()
    ):
        return True
    try:
        return bool(json.loads(config.read_text()).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return None


def check_prompt_format(key: str, model: ModelConfig) -> None:
    """Pre-flight: SetupError when `key`.prompt_format=chat and the model's tokenizer, found on
    this machine without loading or downloading anything, has no chat template. A model not
    on this machine yet is left to the model check."""
    if model.prompt_format != "chat":
        return
    model_dir = local_model_dir(model)
    if model_dir is None or has_chat_template(model_dir) is not False:
        return
    raise SetupError(
        f"{key}.prompt_format=chat, but the tokenizer in {model_dir} has no chat template "
        f"(a base model): set {key}.prompt_format=plain, the papers' plain prompt format"
    )


def local_model_dir(model: ModelConfig) -> Path | None:
    """The directory the model would load from, if it is already on this machine."""
    from srlm.models import EMBEDDED_PREFIX, cache_dir

    if model.path:
        return Path(model.path).expanduser()
    if model.source.startswith(EMBEDDED_PREFIX):
        d = cache_dir() / "models" / model.source[len(EMBEDDED_PREFIX) :]
        return d if d.is_dir() else None
    p = Path(model.source).expanduser()
    if p.is_dir():
        return p
    if model.source.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(model.source, "tokenizer_config.json")
    except Exception:  # a malformed id or cache: nothing to tell here
        return None
    return Path(hit).parent if isinstance(hit, str) else None


class RolloutEngine(ABC):
    tokenizer: object
    sleeps = False  # whether sleep() frees anything (rollout.sleep)

    @abstractmethod
    def generate(
        self, prompts: list[str], sampling: SamplingConfig, n: int = 1, desc: str = "generate"
    ) -> list[list[Completion]]:
        """`n` completions for each already-formatted prompt, in prompt order."""

    @abstractmethod
    def token_logprobs(self, text: str) -> list[float]:
        """Log-probability of each token of `text` (after the first) under the served weights."""

    def next_token_logprobs(self, prompts: list[str], token_ids: list[int]) -> list[list[float]]:
        """``log p(token | prompt)`` of each candidate token right after each prompt.

        For reading a judge's score from its probabilities (reward.score_mode=expected).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read next-token probabilities")

    def close(self) -> None:  # noqa: B027 (optional: an engine may hold nothing)
        """Release the engine's memory and worker processes."""

    def load(self, model_dir: str) -> None:
        """Serve the weights saved in `model_dir` from now on, on this running engine: the
        iterative regime's kept engine (rollout.keep_engine) takes each new checkpoint so,
        instead of a new engine per phase. The caller checks the probe (check_weights)."""
        raise NotImplementedError(f"{type(self).__name__} cannot load weights in place")

    asleep = False

    def sleep(self) -> float:
        """Free the engine's accelerator memory until wake() (rollout.sleep); the seconds it
        took. An engine without a sleep mode does nothing."""
        if not self.sleeps or self.asleep:
            return 0.0
        t0 = time.perf_counter()
        self._sleep()
        self.asleep = True
        return time.perf_counter() - t0

    def wake(self) -> float:
        """Undo sleep(); the seconds it took (nothing if the engine is awake)."""
        if not self.asleep:
            return 0.0
        t0 = time.perf_counter()
        self._wake()
        self.asleep = False
        return time.perf_counter() - t0

    def _sleep(self) -> None:  # noqa: B027 (only an engine with `sleeps` is asked)
        """The engine's own way to free its accelerator memory."""

    def _wake(self) -> None:  # noqa: B027
        """The engine's own way to take it back."""

    def encode(self, text: str) -> list[int]:
        # Chat templates already contain their special tokens; adding BOS again would shift
        # every prompt away from what the trainer sees.
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def check_weights(self, model_dir: str, tolerance: float) -> None:
        """Compare the engine's log-probs of a fixed text with the trainer's, if it left any."""
        probe = Path(model_dir) / PROBE_FILE
        if not probe.exists():
            return
        remedy = (
            "it is the trainer's record for the stale-weight check: restore it, delete it to "
            "skip the check for this checkpoint, or set rollout.check_weights=false"
        )
        expected = read_json(probe, remedy)
        if not isinstance(expected, dict) or not isinstance(expected.get("logprobs"), list):
            raise RunDirError(f"{probe}: no list 'logprobs'; {remedy}")
        self.check_probe(expected["logprobs"], tolerance, f"the weights saved in {model_dir}")

    def check_probe(self, expected: list[float], tolerance: float, source: str) -> float:
        """Stop if the engine's log-probs of the probe text differ from `expected` (the
        trainer's) by more than `tolerance` on average; return the difference."""
        got = self.token_logprobs(PROBE_TEXT)
        if len(got) != len(expected):
            raise SetupError(f"weight check: probe has {len(expected)} tokens, engine {len(got)}")
        diff = sum(abs(a - b) for a, b in zip(got, expected, strict=True)) / max(len(got), 1)
        if diff > tolerance:
            raise SetupError(
                f"the rollout engine does not serve {source}: mean |log-prob difference| on a "
                f"probe text is {diff:.3f} (> {tolerance}). It may hold stale or different "
                "weights."
            )
        return diff

    def sync_from(self, model) -> dict:
        """Serve `model`'s current weights from now on, without a checkpoint on disk
        (srlm.rollout.weight_sync); returns the sync's figures (seconds, bytes)."""
        raise NotImplementedError(f"{type(self).__name__} cannot take weights in memory")
