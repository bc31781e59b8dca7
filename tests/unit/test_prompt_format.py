"""model.prompt_format: the chat template for chat models, the papers' plain text for base models.

Run with the embedded model's tokenizer, and with the same tokenizer with its chat template
removed (a base model's tokenizer, as Llama-2-70B's has none).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from srlm.config import ModelConfig
from srlm.errors import SetupError
from srlm.methods.irpo import build_prompt
from srlm.rollout.base import (
    chat_prompt,
    check_prompt_format,
    format_prompt,
    has_chat_template,
    plain_prompt,
    set_prompt_format,
)
from srlm.training.data import Example, encode_example

EMBEDDED = "embedded:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def model_dir() -> str:
    from srlm.models import resolve_model_dir

    return resolve_model_dir(EMBEDDED)


@pytest.fixture
def chat_tok(model_dir):
    from srlm.training.model import load_tokenizer

    return load_tokenizer(model_dir)


@pytest.fixture
def base_tok(model_dir):
    """The same tokenizer as a base model's: no chat template."""
    from srlm.training.model import load_tokenizer

    tok = load_tokenizer(model_dir)
    tok.chat_template = None
    return tok


@pytest.fixture
def base_dir(model_dir, tmp_path) -> Path:
    """A copy of the embedded model's tokenizer files without its chat template."""
    d = tmp_path / "base"
    d.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(Path(model_dir) / name, d / name)
    return d


def test_plain_prompt_layout():
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "Final answer: 2"},
        {"role": "user", "content": " 2+2? "},
    ]
    assert plain_prompt(messages, "<s>") == (
        "<s>Answer briefly.\n\nUser:\n1+1?\n\nAssistant:\nFinal answer: 2\n\nUser:\n2+2?\n\nAssistant:\n"
    )
    assert plain_prompt([{"role": "user", "content": "Hi"}]) == "User:\nHi\n\nAssistant:\n"


def test_chat_format_uses_the_template(chat_tok):
    text = chat_prompt(chat_tok, "What is 2+2?", system="Be brief.", assistant_prefix="Score: ")
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\nScore: "
    )


def test_plain_format_never_calls_the_template(base_tok):
    set_prompt_format(base_tok, "plain")
    # SmolLM2's tokenizer adds no BOS of its own, so the plain prompt starts with the text.
    assert chat_prompt(base_tok, "What is 2+2?", assistant_prefix="Score: ") == (
        "User:\nWhat is 2+2?\n\nAssistant:\nScore: "
    )
    # A few-shot prompt (IRPO's) keeps its shots as earlier turns.
    shots = [{"question": "1+1?", "reasoning": "One and one. Final answer: 2"}]
    text = build_prompt(base_tok, "2+2?", shots)
    assert "User:\n1+1?\n\nAssistant:\nOne and one. Final answer: 2\n\nUser:\n2+2?" in text
    assert text.endswith("\n\nAssistant:\n") and "<|im_start|>" not in text


def test_plain_format_writes_bos_when_the_tokenizer_adds_one(base_tok):
    # Llama's tokenizer puts "<s>" first; srlm encodes prompts without special tokens, so the
    # plain prompt must carry it. Made a BOS-adding tokenizer by a template processor.
    from tokenizers.processors import TemplateProcessing

    bos, bos_id = base_tok.bos_token, base_tok.bos_token_id
    base_tok._tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)]
    )
    assert base_tok("x").input_ids[0] == bos_id
    set_prompt_format(base_tok, "plain")
    text = chat_prompt(base_tok, "Hi")
    assert text == f"{bos}User:\nHi\n\nAssistant:\n"
    assert base_tok(text, add_special_tokens=False).input_ids[0] == bos_id


def test_chat_format_without_a_template_is_a_clear_error(base_tok):
    with pytest.raises(SetupError, match="no chat template.*prompt_format=plain"):
        chat_prompt(base_tok, "Hi")


def test_training_prompt_equals_sampling_prompt(base_tok):
    """The trainer's example starts with exactly the tokens the engine generated after."""
    set_prompt_format(base_tok, "plain")
    prompt = chat_prompt(base_tok, "Name a colour.")
    row = encode_example(base_tok, Example(prompt, "Blue."), max_length=256)
    assert row["prefix"] == base_tok(prompt, add_special_tokens=False).input_ids
    assert base_tok.decode(row["branches"][0]) == "Blue." + base_tok.eos_token


def test_has_chat_template_reads_files(model_dir, base_dir, tmp_path):
    assert has_chat_template(model_dir) is True  # chat_template.jinja beside the config
    assert has_chat_template(base_dir) is False
    assert has_chat_template(tmp_path / "nowhere") is None


def test_preflight_check(model_dir, base_dir):
    check_prompt_format("model", ModelConfig(name="m", source=EMBEDDED))
    check_prompt_format("model", ModelConfig(name="m", source=str(base_dir), prompt_format="plain"))
    with pytest.raises(SetupError, match=r"model.prompt_format=chat, but the tokenizer in .*base"):
        check_prompt_format("model", ModelConfig(name="m", source=str(base_dir)))
    with pytest.raises(SetupError, match="reward.model.prompt_format=chat"):
        check_prompt_format("reward.model", ModelConfig(name="m", source="x", path=str(base_dir)))
    # A hub model that is not on this machine is the model check's business, not this one's.
    check_prompt_format("model", ModelConfig(name="m", source="nobody/not-cached-model"))


def test_prompt_format_config_key():
    ModelConfig(name="m", source=EMBEDDED, prompt_format="plain").check()
    with pytest.raises(Exception, match="model.prompt_format"):
        ModelConfig(name="m", source=EMBEDDED, prompt_format="alpaca").check()


def test_format_prompt_is_the_chat_template_for_chat_models(chat_tok):
    messages = [{"role": "user", "content": "Hi"}]
    assert format_prompt(chat_tok, messages) == chat_tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
