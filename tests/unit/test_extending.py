"""The worked examples of docs/extending.md do what the page says: the loss is the registered
hinge loss, and the reward source and the method register from their module alone, compose from
their YAML alone (found through hydra.searchpath, as a user's own config directory would be),
validate, are refused where they do not fit, and run."""

from __future__ import annotations

import re
import sys
import types

import pytest
import torch
import yaml

from srlm.compose import CONF_DIR, compose, validate
from srlm.errors import ConfigError
from srlm.rewards.base import Item, get_reward
from srlm.rollout.base import Completion
from srlm.rundir import RunDir, read_jsonl

DOC = (CONF_DIR.parent / "docs" / "extending.md").read_text()
PY = re.findall(r"```python\n(.*?)```", DOC, re.S)
YML = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
LOSS_PY, REWARD_PY, METHOD_PY = PY
LOSS_YML, REWARD_YML, METHOD_YML, METHOD_DEFAULT_REWARD_YML, METHOD_DEFAULT_LOSS_YML = YML


def _module(name: str, source: str) -> types.ModuleType:
    # In sys.modules while it runs, as an imported module is (dataclasses look it up there).
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(source, f"docs/extending.md:{name}", "exec"), mod.__dict__)
    return mod


@pytest.fixture
def user_conf(tmp_path):
    """A config directory of the user's own, with the page's YAML files; the registrations made
    by the page's modules are undone afterwards."""
    from srlm.methods import base as methods_base
    from srlm.rewards import base as rewards_base

    conf = tmp_path / "conf"
    for rel, text in [
        ("reward/brevity.yaml", REWARD_YML),
        ("method/best_vs_worst.yaml", METHOD_YML),
        ("reward/default/best_vs_worst.yaml", METHOD_DEFAULT_REWARD_YML),
        ("optimizer/default/best_vs_worst.yaml", METHOD_DEFAULT_LOSS_YML),
    ]:
        (conf / rel).parent.mkdir(parents=True, exist_ok=True)
        (conf / rel).write_text(text)
    yield f"hydra.searchpath=[file://{conf}]"
    for name in ("brevity", "best_vs_worst"):
        sys.modules.pop(name, None)
    rewards_base._SOURCES.pop("brevity", None)
    methods_base._METHODS.pop("best_vs_worst", None)


def test_the_loss_on_the_page_is_the_registered_hinge_loss():
    from srlm.core import losses

    captured = {}

    def register_loss(name, **kw):
        def wrap(fn):
            captured[name] = (fn, kw)
            return fn

        return wrap

    ns = {"torch": torch, "_reward_metrics": losses._reward_metrics, "register_loss": register_loss}
    exec(LOSS_PY, ns)
    fn, kw = captured["hinge"]
    spec = losses.loss_spec("hinge")
    assert kw["options"] == spec.options
    args = [torch.tensor([x]) for x in (-10.0, -15.0, -12.0, -14.0, 5.0, 10.0)]
    for beta in (0.1, 0.5):
        (a, _), (b, _) = fn(*args, beta=beta), spec.fn(*args, beta=beta)
        assert a.item() == pytest.approx(b.item())
    assert yaml.safe_load(LOSS_YML) == yaml.safe_load(
        (CONF_DIR / "optimizer" / "hinge.yaml").read_text()
    )


def test_the_reward_source_registers_composes_and_scores(user_conf):
    _module("brevity", REWARD_PY)
    cfg = validate(compose([user_conf, "method=tpo", "reward=brevity", "rollout=hf"]))
    assert cfg.reward.max_words == 100
    out = get_reward(cfg).score([[Item("q", "one two three"), Item("q", "one")]], None)
    assert [s.score for s in out.scored[0]] == [-3, -1]
    with pytest.raises(ConfigError, match="method=irpo with reward=brevity"):
        validate(compose([user_conf, "method=irpo", "reward=brevity", "rollout=hf"]))
    with pytest.raises(ConfigError, match="reward.max_words=0"):
        validate(compose([user_conf, "method=tpo", "reward=brevity", "reward.max_words=0"]))


class _Tokenizer:
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class _Engine:
    """Answers every prompt with n answers of 1..n words (the pure logic of the stages only)."""

    tokenizer = _Tokenizer()

    def generate(self, prompts, sampling, n=1, desc=""):
        return [
            [Completion(" ".join(["word"] * (i + 1)), i + 1, "stop") for i in range(n)]
            for _ in prompts
        ]


def test_the_method_registers_composes_and_runs_its_stages(user_conf, tmp_path):
    _module("brevity", REWARD_PY)
    mod = _module("best_vs_worst", METHOD_PY)
    cfg = validate(
        compose([user_conf, "method=best_vs_worst", "reward=brevity", "rollout=hf", "data.limit=3"])
    )
    assert cfg.method.samples_per_prompt == 4
    # Its default reward comes from conf/reward/default/best_vs_worst.yaml.
    assert compose([user_conf, "method=best_vs_worst"]).reward.name == "self_judge"
    with pytest.raises(ConfigError, match="method=best_vs_worst with reward=verifiable"):
        validate(compose([user_conf, "method=best_vs_worst", "reward=verifiable", "rollout=hf"]))

    cfg.run_dir = str(tmp_path / "run")
    method = mod.BestVsWorst(cfg, RunDir(cfg.run_dir))
    engine = _Engine()
    assert method.run_stage("samples", 1, lambda: engine)["mean_score"] == pytest.approx(-2.5)
    assert method.run_stage("pairs", 1, lambda: engine) == {"pairs": 3}
    pairs = read_jsonl(RunDir(cfg.run_dir).iter_dir(1) / "pairs.jsonl")
    assert all(p["chosen"] == "word" and p["rejected"] == "word word word word" for p in pairs)
    examples = method.training_examples(1, _Tokenizer())
    assert len(examples) == 3 and examples[0].chosen == "word"


def test_a_method_without_its_default_loss_file_is_told_which_file():
    from srlm.compose import _no_default

    error = Exception("In 'config': Could not find 'optimizer/default/best_vs_worst'\nAvailable")
    msg = _no_default(error)
    assert "conf/optimizer/default/best_vs_worst.yaml" in msg and "optimizer=NAME" in msg
    assert _no_default(Exception("Could not find 'inference/beam'")) is None
