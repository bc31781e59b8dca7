"""What a decoder is, and the decoder registry (the `inference/` config group).

A decoder answers conversations that end with a user turn. `direct` asks the model once
(System 1); the System-2 decoders spend more generation on the same question: several samples
and a rule that picks one (best_of_n, self_consistency), or a chain of prompted steps of the
same model (cove, s2a, bsm). Every decoder returns, per conversation, the final answer and
what it cost and did:

    decoder = get_decoder(config)                     # cheap: nothing loads
    out = decoder.decode([Query(messages, gold), ...], engine)
    out[i].response   # the final answer (None: the model gave none)
    out[i].tokens     # every token generated for it, intermediate steps included
    out[i].trace      # the intermediate texts (verification questions, the rewrite, ...)
    out[i].failures   # the steps whose output could not be read (each fell back)

The question a step-wise decoder works on is the last user turn; earlier turns (a system
instruction, worked examples) stay in the prompt of the step that writes the answer, so the
answer keeps the task's format ("Final answer: N"), and are left out of the intermediate
steps, which have their own instructions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from srlm.config import DecoderConfig, SamplingConfig
from srlm.errors import ConfigError
from srlm.rollout.base import Completion, format_prompt

EngineFn = Callable[[], Any]


@dataclass
class Query:
    """A conversation to answer (it ends with a user turn), with the gold answer when known
    (only a reward source that checks answers reads it)."""

    messages: list[dict]
    gold: str | None = None

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]

    def asking(self, question: str) -> list[dict]:
        """The conversation with its last user turn replaced by `question`."""
        return [*self.messages[:-1], {"role": "user", "content": question}]


@dataclass
class QuestionSet:
    """Held-out questions with gold answers (srlm.inference.questions)."""

    name: str
    rows: list[dict]  # each with "id", "question", "answer"
    ask: Callable[[dict], list[dict]]  # the conversation that asks a row's question
    score: Callable[[str | None, str], dict]  # (response, gold) -> {"pred", "score", "correct"}


@dataclass
class Decoded:
    response: str | None
    tokens: int = 0
    # Sequences generated for this answer (a step with n samples counts n).
    calls: int = 0
    # How the answer's own generation ended ("stop" | "length").
    finish_reason: str | None = None
    answer_tokens: int = 0
    trace: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class Decoder:
    """A decoder option. The constructor must be cheap (it runs before any model loads)."""

    name: ClassVar[str] = ""
    schema: ClassVar[type[DecoderConfig]] = DecoderConfig
    # Whether it scores answers with a reward source (best_of_n), so that a run without one
    # that fits is refused at start.
    uses_reward: ClassVar[bool] = False

    def __init__(self, config: DecoderConfig, run_config=None):
        self.config = config
        self.run_config = run_config

    def decode(
        self, queries: list[Query], engine: EngineFn, temperature: float | None = None
    ) -> list[Decoded]:
        """Answer every query. `temperature` replaces the answer step's (a distillation
        teacher samples its decoder several times per question)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the decoder loaded (a reward model)."""

    # ------------------------------------------------------------ helpers for subclasses
    def answer_sampling(self, temperature: float | None) -> SamplingConfig:
        s = self.config.sampling
        if temperature is None:
            return s
        return SamplingConfig(temperature, s.top_p if temperature > 0 else 1.0, s.max_tokens)

    def step_sampling(self) -> SamplingConfig:
        """Intermediate steps are greedy: they are read by a parser, not shown."""
        return SamplingConfig(0.0, 1.0, self.config.step_max_tokens)


def generate_chats(
    engine, chats: list[list[dict]], sampling: SamplingConfig, n: int = 1, desc: str = "decode"
) -> list[list[Completion]]:
    if not chats:
        return []
    prompts = [format_prompt(engine.tokenizer, c) for c in chats]
    return engine.generate(prompts, sampling, n=n, desc=desc)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- registry
_DECODERS: dict[str, type[Decoder]] = {}


def register_decoder(name: str, schema: type[DecoderConfig]):
    """Class decorator: the implementation of ``inference=<name>``, configured by `schema`
    (``conf/inference/<name>.yaml`` starts from ``/schema/inference/<name>@_here_``)."""

    def wrap(cls: type[Decoder]) -> type[Decoder]:
        cls.name, cls.schema = name, schema
        _DECODERS[name] = cls
        return cls

    return wrap


def _load() -> None:
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name != "__main__":  # the command line, not a decoder
            importlib.import_module(f"srlm.inference.{info.name}")


def decoder_names() -> list[str]:
    _load()
    return sorted(_DECODERS)


def decoder_class(name: str) -> type[Decoder]:
    if name not in _DECODERS:
        _load()
    if name not in _DECODERS:
        raise ConfigError(
            f"inference={name}: no decoder is registered under this name; known: "
            f"{', '.join(decoder_names())}"
        )
    return _DECODERS[name]


def get_decoder(config, inference: DecoderConfig | None = None) -> Decoder:
    """The decoder of a validated srlm.config.Config (or `inference`, another decoder's
    settings, for the same run)."""
    cfg = inference if inference is not None else config.inference
    return decoder_class(cfg.name)(cfg, config)
