"""Every paper set-up in experiments/ starts: each runs its first iteration on CPU, with its sizes
scaled down by overrides and tiny randomly initialised models of the paper models' architecture
families in place of the real weights (tests/tiny_models.py).

    .venv/bin/python -m pytest tests/integration/test_paper_setups.py -m slow -q -s

What a set-up keeps: its method, reward source, loss and optimizer settings, prompt format (a base
model's plain format, a chat model's template), warm start, evaluation data and schedule shape.
What the overrides change: the model weights (tiny, random), the sizes (a few prompts, a few
tokens, one iteration), the machine (trainer=cpu, rollout=hf, one device) and the data files that
live on the user's machine (srlm's fixtures in tests/data). What this does not cover: the real
tokenizers and chat templates (every tiny model has the embedded SmolLM2 tokenizer, its template
removed for a base model), the hub loaders of the data (hf:openai/gsm8k), vLLM, several GPUs and
the real sizes' memory. A tiny random model writes text no parser accepts, so a judge that must
write its verdict forms no pair and the train stage records that it had no examples: the stage
is still reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_srlm
from tests.tiny_models import tiny_model, tiny_reward_model

DATA = ROOT / "tests" / "data"
SEED_JUDGEMENTS = ROOT / "srlm" / "data" / "seed_judgements.jsonl"
# The machine and the sizes every set-up is scaled down to.
SMALL = [
    "rollout=hf",
    "rollout.engine=hf",  # a set-up's own rollout.engine=vllm outranks rollout=hf
    "rollout.tensor_parallel_size=1",
    "trainer=cpu",
    "trainer.devices=1",
    "trainer.strategy=auto",
    "logger=none",
    "isolate_stages=false",
    "method.iterations=1",
    "optimizer.epochs=1",
    "optimizer.batch_size=2",
    "optimizer.grad_accum=1",
    "eval.max_prompts=1",
    "eval.max_pairs=2",
    "eval.sampling.max_tokens=8",
    "eval.judge.sampling.max_tokens=8",
    "eval.win_rates=false",
]
# The online set-ups on verifiable maths: GSM8K fixtures for the hub's data sets, two steps.
ONLINE_MATH = [
    f"method.train_file={DATA / 'gsm8k' / 'train.jsonl'}",
    f"method.test_file={DATA / 'gsm8k' / 'test.jsonl'}",
    "method.field_map={}",
    "method.train_questions=4",
    "method.test_questions=2",
    "method.samples_per_question=2",
    "method.max_tokens=8",
    "trainer.steps_per_iteration=2",
    "trainer.prompts_per_step=2",
]
# Per set-up: the models and files it needs by key (the `tiny` fixture's "chat", "base", "rm"
# models of tests/tiny_models.py, "ift" and "judged" rows), and its own scaled-down sizes and data
# files.
SETUPS = {
    "self_reward_llama2_70b": (
        {"model.path": "base", "data.seed_ift": "ift", "data.seed_judgements": "judged"},
        [
            # The prompt writer is a chat model that must write usable prompts, which a random
            # one never does: the embedded SmolLM2 (a Llama) writes them here.
            "method.prompt_writer.source=embedded:smollm2-135m-instruct",
            "method.prompts_per_iteration=2",
            "method.prompt_sampling.max_tokens=48",
            "method.samples_per_prompt=2",
            "method.response_sampling.max_tokens=8",
            "method.warm_start.epochs=1",
            "method.warm_start.batch_size=2",
            "reward.samples=1",
            "reward.sampling.max_tokens=16",
        ],
    ),
    "irpo_gsm8k_llama2_70b": (
        {"model.path": "chat"},
        [
            f"method.train_file={DATA / 'gsm8k' / 'train.jsonl'}",
            f"method.test_file={DATA / 'gsm8k' / 'test.jsonl'}",
            "method.train_questions=2",
            "method.test_questions=2",
            "method.samples_per_question=2",
            "method.pairs_per_question=1",
            "method.max_tokens=8",
            "method.eval_maj_k=2",
        ],
    ),
    "tpo_llama3_8b": (
        {"model.path": "chat", "reward.model.path": "rm"},
        [
            "method.prompts_per_iteration=2",
            "method.samples_per_prompt=2",
            "method.sampling.max_tokens=8",
            "reward.batch_size=2",
        ],
    ),
    "tpo_ste_llama3_8b": (
        {"model.path": "chat", "reward.model.path": "chat"},
        [
            "method.prompts_per_iteration=2",
            "method.samples_per_prompt=2",
            "method.sampling.max_tokens=8",
            "reward.sampling.max_tokens=8",
        ],
    ),
    "meta_reward_llama3_8b": (
        {"model.path": "chat", "data.seed_judgements": "judged"},
        [
            "method.prompts_per_iteration=2",
            "method.samples_per_prompt=2",
            "method.response_sampling.max_tokens=8",
            "method.meta_judge_sampling.max_tokens=8",
            "method.warm_start.epochs=1",
            "method.warm_start.batch_size=2",
            "reward.samples=2",
            "reward.sampling.max_tokens=8",
        ],
    ),
    "semi_online_dpo_llama31_8b_math": ({"model.path": "chat"}, ONLINE_MATH),
    "grpo_llama31_8b_math": ({"model.path": "chat"}, ONLINE_MATH),
    "grpo_r1zero_qwen25_7b_gsm8k": ({"model.path": "base"}, ONLINE_MATH),
    "semi_online_dpo_llama31_8b_wildchat": (
        {"model.path": "chat", "reward.model.path": "rm"},
        [
            "trainer.steps_per_iteration=2",
            "trainer.sync_every=2",
            "trainer.prompts_per_step=2",
            "method.samples_per_prompt=2",
            "method.response_sampling.max_tokens=8",
            "reward.batch_size=2",
        ],
    ),
    "system2_distill_s2a_llama2_70b": (
        {"model.path": "chat"},
        [
            f"method.train_file={DATA / 'gsm8k' / 'train.jsonl'}",
            f"method.test_file={DATA / 'gsm8k' / 'test.jsonl'}",
            "method.train_questions=2",
            "method.test_questions=2",
            "method.teacher_samples=2",
            "method.teacher.step_max_tokens=8",
            "method.teacher.sampling.max_tokens=8",
        ],
    ),
    "evalplanner_llama31_70b": (
        {"model.path": "chat"},
        [
            f"method.triples={DATA / 'triples.jsonl'}",
            f"eval.pairs={DATA / 'rewardbench.jsonl'}",
            "method.instructions_per_iteration=[2]",
            "method.plans_per_instruction=1",
            "method.executions_per_plan=2",
            "method.response_sampling.max_tokens=8",
            "method.plan_sampling.max_tokens=8",
            "method.execution_sampling.max_tokens=8",
            "method.eval_max_tokens=8",
            # The SFT warm start trains on executions that reached the correct verdict; a
            # random judge writes none, so the run would stop there (as it should).
            "method.sft_warm_start=false",
        ],
    ),
}


# Online set-ups whose reward a random model never varies (verifiable answers).
ONLINE_NO_SIGNAL = {
    "semi_online_dpo_llama31_8b_math",
    "grpo_llama31_8b_math",
    "grpo_r1zero_qwen25_7b_gsm8k",
}


def paper_setups() -> list[str]:
    return sorted(
        p.stem for p in (ROOT / "experiments").glob("*.yaml") if "quickstart" not in p.stem
    )


def test_every_paper_setup_is_listed():
    assert sorted(SETUPS) == paper_setups(), "add the new set-up to SETUPS with its sizes"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    # Four of srlm's seed judgements (a warm start of a few steps), and their instructions and
    # responses as instruction-following rows, as the user's Open Assistant file would give them.
    rows = [json.loads(r) for r in SEED_JUDGEMENTS.read_text().splitlines() if r.strip()]
    rows = sorted(rows, key=lambda r: r["score"])
    rows = rows[:2] + rows[-2:]
    judged = root / "judged.jsonl"
    judged.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ift = root / "ift.jsonl"
    ift.write_text(
        "".join(json.dumps({k: r[k] for k in ("instruction", "response")}) + "\n" for r in rows)
    )
    return {
        "chat": tiny_model(root / "llama_chat"),
        "base": tiny_model(root / "llama_base", chat=False),
        "rm": tiny_reward_model(root / "llama_rm"),
        "ift": ift,
        "judged": judged,
    }


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_paper_setup_starts(name, tiny, tmp_path):
    files, sizes = SETUPS[name]
    run_dir = tmp_path / "run"
    args = [
        f"experiment={name}",
        *SMALL,
        *sizes,
        *(f"{key}={tiny[kind]}" for key, kind in files.items()),
        f"run_dir={run_dir}",
    ]
    print(f"\n$ python -m srlm {' '.join(args)}")
    p = run_srlm(args, timeout=900)
    if name in ONLINE_NO_SIGNAL and p.returncode != 0:
        # A random model answers no question right: every group's samples score the same, and
        # the online regime stops after its empty draws. Reaching that point means the set-up
        # started: its engine sampled, its reward scored, its trainer waited for data.
        assert "gave no training data" in p.stderr, f"{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
        assert '"evaluate"' in (run_dir / "iter_00" / "stages.json").read_text()
        return
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    reached = {
        d.name: list(json.loads((d / "stages.json").read_text()))
        for d in sorted(run_dir.glob("iter_*"))
    }
    print(f"{name}: stages reached {json.dumps(reached)}")
    # The first iteration ran every stage of its method, up to the training of M_1.
    assert "train" in reached.get("iter_01", []), reached
