"""TrainConfig describes its own fields, and checks values against that description."""

from __future__ import annotations

import dataclasses

import pytest

from engine.data import BUILTIN, DOWNLOADABLE
from engine.train_config import (
    DATASETS,
    ConfigError,
    TrainConfig,
    panel_settings,
    setting,
    settings,
)


def test_every_field_is_described_with_its_type_and_default():
    fields = dataclasses.fields(TrainConfig)
    assert [s.name for s in settings()] == [f.name for f in fields]
    defaults = TrainConfig()
    for s in settings():
        assert s.label and s.doc, s.name
        assert s.default == getattr(defaults, s.name)
        assert s.problem(s.default) is None, s.name       # the defaults are valid
        if s.kind == "choice":
            assert s.default in s.choices
    assert setting("lr").kind == "float" and setting("epochs").kind == "int"
    assert setting("optimizer").kind == "choice" and setting("hflip").kind == "bool"
    assert setting("limit").nullable and not setting("epochs").nullable
    with pytest.raises(KeyError):
        setting("no_such_setting")


def test_the_named_datasets_are_the_loaders():
    """train_config is torch-free, so it cannot import engine.data's names; this keeps
    the two lists one."""
    assert DATASETS == (*BUILTIN, *DOWNLOADABLE)
    assert setting("dataset").choices == DATASETS and setting("dataset").paths


def test_the_panel_shows_the_settings_a_run_starts_from():
    names = [s.name for s in panel_settings()]
    assert names == ["dataset", "epochs", "batch_size", "lr", "optimizer", "schedule",
                     "device", "precision", "crop_padding", "hflip"]


@pytest.mark.parametrize("key, bad", [
    ("epochs", 0), ("epochs", 2.5), ("batch_size", True), ("lr", 0), ("lr", float("nan")),
    ("val_fraction", 1.0), ("label_smoothing", -0.1), ("optimizer", "rmsprop"),
    ("device", "tpu"), ("dataset", ""), ("classes", [1, 2]), ("limit", 0),
    ("hflip", "yes"), ("crop_padding", -4), ("probe_seconds", -1),
])
def test_a_value_outside_the_description_is_refused_naming_setting_and_range(key, bad):
    s = setting(key)
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({key: bad})
    message = str(caught.value)
    assert message.startswith(s.label.lower()) and repr(bad) in message
    assert s.expected() in message
    assert s.problem(bad) is not None


@pytest.mark.parametrize("key, good", [
    ("epochs", 10_000), ("val_fraction", 0.0), ("lr", 1e6), ("limit", None),
    ("channels_last", None), ("dataset", "/data/pets.npz"), ("classes", ["X", "O"]),
])
def test_values_inside_the_description_are_taken(key, good):
    assert getattr(TrainConfig.from_dict({key: good}), key) == good


def test_rules_that_tie_settings_together_still_apply():
    with pytest.raises(ConfigError, match="nesterov needs the sgd optimizer"):
        TrainConfig.from_dict({"nesterov": True})
    assert TrainConfig.from_dict({"nesterov": True, "optimizer": "sgd"}).nesterov
