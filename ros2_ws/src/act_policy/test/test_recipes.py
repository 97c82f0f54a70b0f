"""One definition of the training recipe: --recipe, its flags, --help and the pipeline's hint agree."""

from __future__ import annotations

import pytest

from act_policy.pipeline import NEXT_STEPS
from act_policy.policy_cli import parse_train_args, train_parser
from act_policy.recipes import CPU, RECIPES

BASE = ["--dataset", "d", "--out", "o"]


def test_the_recipe_sets_every_value_it_names_including_the_warmup():
    a = parse_train_args([*BASE, "--recipe", "cpu"])
    for key, value in CPU.options.items():
        got = getattr(a, key)
        assert (tuple(got) if isinstance(value, tuple) else got) == value, key
    assert a.warmup_steps == 100 and a.recipe == "cpu"


def test_flags_given_beside_the_recipe_override_it():
    a = parse_train_args([*BASE, "--steps", "10", "--recipe", "cpu", "--lr", "1e-4"])
    assert (a.steps, a.lr, a.warmup_steps) == (10, 1e-4, 100)


def test_the_recipe_written_as_flags_is_the_same_recipe():
    def values(argv: list[str]) -> dict:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in vars(parse_train_args(argv)).items()
                if k != "recipe"}

    assert values([*BASE, "--recipe", "cpu"]) == values([*BASE, *CPU.flags()])


def test_help_and_the_pipeline_hint_show_the_recipe_not_a_copy():
    text = train_parser().format_help()
    assert "--recipe cpu" in text and "--warmup-steps 100" in text.replace("\n    ", " ")
    assert "--recipe cpu" in NEXT_STEPS and "--lr" not in NEXT_STEPS


def test_an_unknown_recipe_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse_train_args([*BASE, "--recipe", "gpu-nonexistent"])
    assert "invalid choice" in capsys.readouterr().err
    assert set(RECIPES) == {"cpu"}
