from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Optional

import pytest
import yaml

from hrmkit.config_base import (
    ConfigError,
    build_config,
    config_to_dict,
    deep_merge,
    describe_config,
    field_doc,
    load_yaml,
    parse_overrides,
    save_config_yaml,
)


@dataclass
class ArchConfig:
    hidden_size: int = field_doc(64, "Width of every layer.")
    num_heads: int = field_doc(4, "Attention heads.")
    dropout: float = field_doc(0.0, "Dropout probability.")
    causal: bool = field_doc(False, "Causal attention mask.")
    layer_sizes: list[int] = field_doc([1, 2], "Sizes per layer.")

    def validate(self) -> list[str]:
        if self.hidden_size % self.num_heads:
            return [f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"]
        return []


@dataclass
class TrainConfig:
    lr: float = field_doc(1e-4, "Peak learning rate.")
    precision: Literal["fp32", "bf16", "fp16"] = field_doc("fp32", "Compute precision.")
    max_steps: int | None = field_doc(None, "Stop after this many steps.")
    seed: Optional[int] = field_doc(0, "Random seed.")
    betas: tuple[float, float] = field_doc((0.9, 0.95), "Adam betas.")
    tags: list[str] = field_doc([], "Free-form run tags.")
    optimizer_kwargs: dict[str, Any] = field_doc({}, "Extra optimizer options.")


@dataclass
class RunConfig:
    name: str = field_doc(dataclasses.MISSING, "Run name.")
    arch: ArchConfig = field_doc(ArchConfig, "Model architecture.")
    train: TrainConfig = field_doc(TrainConfig, "Training loop.")

    def validate(self) -> list[str]:
        return ["name must not be empty"] if not self.name else []


def test_builds_nested_config_and_keeps_defaults():
    config = build_config(RunConfig, {"name": "run", "arch": {"hidden_size": 128}})
    assert config.arch.hidden_size == 128
    assert config.arch.num_heads == 4
    assert config.train == TrainConfig()


def test_coerces_every_type_from_command_line_strings():
    data = {
        "name": "run",
        "arch": {"hidden_size": "96", "dropout": "1e-3", "causal": "yes", "layer_sizes": "[3, 4]"},
        "train": {
            "lr": "3",
            "precision": "bf16",
            "max_steps": "null",
            "seed": "None",
            "betas": "0.8,0.9",
            "tags": "a, b",
            "optimizer_kwargs": {"eps": "1e-8", "amsgrad": "true", "name": "x"},
        },
    }
    config = build_config(RunConfig, data)
    assert config.arch.hidden_size == 96
    assert config.arch.dropout == pytest.approx(0.001)
    assert config.arch.causal is True
    assert config.arch.layer_sizes == [3, 4]
    assert config.train.lr == 3.0 and isinstance(config.train.lr, float)
    assert config.train.max_steps is None and config.train.seed is None
    assert config.train.betas == (0.8, 0.9)
    assert config.train.tags == ["a", "b"]
    assert config.train.optimizer_kwargs == {"eps": 1e-8, "amsgrad": True, "name": "x"}


@pytest.mark.parametrize("text, expected", [("true", True), ("0", False), ("No", False), ("1", True)])
def test_bool_words(text, expected):
    assert build_config(ArchConfig, {"causal": text}).causal is expected


def test_integral_float_is_an_int_but_fractional_and_bool_are_not():
    assert build_config(ArchConfig, {"hidden_size": 64.0}).hidden_size == 64
    with pytest.raises(ConfigError) as error:
        build_config(ArchConfig, {"hidden_size": 64.5, "num_heads": True})
    assert str(error.value) == "hidden_size: expected int, got 64.5; num_heads: expected int, got True"


def test_reports_all_problems_at_once_with_dotted_paths():
    data = {
        "name": "run",
        "arch": {"hiden_size": 8, "num_heads": "abc"},
        "train": {"precision": "fp8"},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as error:
        build_config(RunConfig, data)
    message = str(error.value)
    assert "\n" not in message
    assert error.value.problems == [
        "unknown key 'extra'",
        "unknown key 'arch.hiden_size' (did you mean 'arch.hidden_size'?)",
        "arch.num_heads: expected int, got 'abc'",
        "train.precision: expected one of 'fp32', 'bf16', 'fp16', got 'fp8'",
    ]


def test_missing_required_key_and_wrong_tuple_length():
    with pytest.raises(ConfigError) as error:
        build_config(RunConfig, {"train": {"betas": [0.9]}})
    assert error.value.problems == [
        "missing required key 'name'",
        "train.betas: expected tuple[float, float], got 1 items: [0.9]",
    ]


def test_validate_hooks_run_on_nested_configs_with_their_path():
    with pytest.raises(ConfigError) as error:
        build_config(RunConfig, {"name": "", "arch": {"hidden_size": 10}})
    assert error.value.problems == [
        "arch: hidden_size 10 is not a multiple of num_heads 4",
        "name must not be empty",
    ]


def test_validate_runs_on_clean_subtrees_even_when_a_sibling_is_bad():
    with pytest.raises(ConfigError) as error:
        build_config(RunConfig, {"name": "run", "arch": {"hidden_size": 10}, "train": {"lr": "x"}})
    assert error.value.problems == [
        "train.lr: expected float, got 'x'",
        "arch: hidden_size 10 is not a multiple of num_heads 4",
    ]


def test_parse_overrides_accepts_mixed_forms():
    args = ["arch.hidden_size=32", "--train.lr", "1e-3", "--train.precision=bf16", "--arch.causal", "--name", "x", "--verbose"]
    assert parse_overrides(args) == {
        "arch": {"hidden_size": "32", "causal": "true"},
        "train": {"lr": "1e-3", "precision": "bf16"},
        "name": "x",
        "verbose": "true",
    }


def test_parse_overrides_turns_dashes_into_underscores():
    assert parse_overrides(["--train.max-steps", "5"]) == {"train": {"max_steps": "5"}}


def test_parse_overrides_reports_malformed_items_together():
    with pytest.raises(ConfigError) as error:
        parse_overrides(["hidden", "a..b=1", "x=1", "x.y=2"])
    assert len(error.value.problems) == 3
    assert "bad override 'hidden'" in error.value.problems[0]


def test_overrides_then_build():
    overrides = parse_overrides(["--name", "cli", "arch.num_heads=8", "--arch.hidden_size", "128"])
    config = build_config(RunConfig, deep_merge({"name": "file", "arch": {"dropout": 0.1}}, overrides))
    assert (config.name, config.arch.num_heads, config.arch.hidden_size, config.arch.dropout) == ("cli", 8, 128, 0.1)


def test_deep_merge_returns_a_new_dict():
    base = {"a": {"b": 1, "c": [1]}, "d": 2}
    merged = deep_merge(base, {"a": {"b": 5}, "d": {"e": 1}})
    assert merged == {"a": {"b": 5, "c": [1]}, "d": {"e": 1}}
    merged["a"]["c"].append(2)
    assert base == {"a": {"b": 1, "c": [1]}, "d": 2}


def test_yaml_base_inheritance_chains(tmp_path):
    (tmp_path / "root.yaml").write_text("name: root\narch: {hidden_size: 32, num_heads: 2}\n")
    (tmp_path / "mid.yaml").write_text("base: root\narch: {num_heads: 4}\n")
    (tmp_path / "leaf.yaml").write_text("base: mid.yaml\nname: leaf\n")
    assert load_yaml(tmp_path / "leaf.yaml") == {"name": "leaf", "arch": {"hidden_size": 32, "num_heads": 4}}


def test_yaml_base_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_yaml(tmp_path / "a.yaml")


def test_yaml_errors_are_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    for path, fragment in [(tmp_path / "missing.yaml", "not found"), (bad, "invalid YAML"), (listing, "mapping")]:
        with pytest.raises(ConfigError) as error:
            load_yaml(path)
        assert str(path) in str(error.value) and fragment in str(error.value)
        assert "\n" not in str(error.value)


def test_save_and_load_round_trip_in_field_order(tmp_path):
    config = build_config(RunConfig, {"name": "run", "train": {"tags": ["x"], "max_steps": 7}})
    path = tmp_path / "config.yaml"
    save_config_yaml(config, path)
    assert list(yaml.safe_load(path.read_text())) == ["name", "arch", "train"]
    assert build_config(RunConfig, load_yaml(path)) == config
    assert config_to_dict(config)["train"]["betas"] == [0.9, 0.95]
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_describe_config_lists_leaves_with_defaults_and_docs():
    rows = describe_config(RunConfig)
    assert rows[0] == ("name", "required", "Run name.")
    assert ("arch.hidden_size", "64", "Width of every layer.") in rows
    assert ("train.precision", "'fp32'", "Compute precision.") in rows
    assert ("arch.layer_sizes", "[1, 2]", "Sizes per layer.") in rows
    assert len(rows) == 1 + 5 + 7


def test_field_doc_copies_mutable_defaults():
    first, second = ArchConfig(), ArchConfig()
    first.layer_sizes.append(9)
    assert second.layer_sizes == [1, 2]
