"""Options are read once and never change: a step that needs other values makes a copy, and
what the user set stays apart from the command's defaults."""

from __future__ import annotations

import dataclasses

import pytest

from inceptionism.configure import Options, build_config, featurevis_config
from inceptionism.errors import UnknownNameError


def test_options_are_frozen_and_copies_leave_the_original_alone():
    options = Options.of({"model": "efficientnet_lite0", "steps": 5, "preset": None}, ["steps"])
    with pytest.raises(TypeError):
        options.values["steps"] = 6  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.given = frozenset()  # type: ignore[misc]
    changed = options.replace(steps=9)
    assert options["steps"] == 5 and changed["steps"] == 9
    assert options.explicit == {"steps": 5}
    assert changed.explicit == {}  # the command's own value now, not the user's
    chosen = options.choose(octaves=2)
    assert chosen.explicit == {"octaves": 2, "steps": 5} and "octaves" not in options


def test_a_lucid_render_leaves_the_options_as_they_were():
    """featurevis_config used to clear the preset in place (and a later build_config depended
    on that order); now the options are the same before and after, in either order."""
    options = Options.of({"model": "efficientnet_lite0", "preset": "lucid", "steps": 4},
                         ["preset", "steps"])  # fmt: skip
    before = dict(options.values)
    config = build_config(options, lucid=True)
    fv = featurevis_config(options, (64, 64))
    assert dict(options.values) == before
    assert fv is not None and fv.steps == 4
    assert config == build_config(options, lucid=True)  # the same whatever ran first
    assert config.steps == 4 and config.model == "efficientnet_lite0"
    # a command that renders no lucid recipe (sweep, zoom, video) refuses it, never ignores it
    with pytest.raises(UnknownNameError, match="lucid"):
        build_config(options)


def test_only_what_the_user_set_overrides_the_preset():
    """A preset's field survives a default the command passed along; a value the user set wins."""
    preset = build_config(Options.of({"model": "efficientnet_lite0", "preset": "keras-classic"}))
    values = {"model": "efficientnet_lite0", "preset": "keras-classic", "steps": 99}
    defaults_only = build_config(Options.of(values, ["model", "preset"]))
    assert defaults_only.steps == preset.steps != 99
    assert build_config(Options.of(values, ["model", "preset", "steps"])).steps == 99
