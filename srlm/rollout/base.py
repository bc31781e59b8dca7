"""What every rollout engine offers, and the checks that are the same for all of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from srlm.config import SamplingConfig
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


def chat_prompt(tokenizer, user: str, system: str | None = None, assistant_prefix: str = "") -> str:
    """The model's chat template around one user turn, ready for the assistant to continue.

    `assistant_prefix` is text the assistant turn starts with (e.g. forcing "Score: ").
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + assistant_prefix


class RolloutEngine(ABC):
    tokenizer: object

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
        expected = expected["logprobs"]
        got = self.token_logprobs(PROBE_TEXT)
        if len(got) != len(expected):
            raise SetupError(f"weight check: probe has {len(expected)} tokens, engine {len(got)}")
        diff = sum(abs(a - b) for a, b in zip(got, expected, strict=True)) / max(len(got), 1)
        if diff > tolerance:
            raise SetupError(
                f"the rollout engine does not serve the weights saved in {model_dir}: mean "
                f"|log-prob difference| on a probe text is {diff:.3f} (> {tolerance}). "
                "It may have loaded a stale or different checkpoint."
            )
