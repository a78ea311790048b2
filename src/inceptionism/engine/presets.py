"""The named presets: each seed implementation's recipe (its parameters, and its layers mapped
onto any network by relative depth), as field values for :meth:`DreamConfig.preset`. Plain
data (no torch): `inceptionism presets` lists them before any network loads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inceptionism.ops.text import format_weight

# --- presets -------------------------------------------------------------------------------------

# The seeds name layers of InceptionV3 (mixed0..mixed10, Keras) and GoogLeNet (3a..5b, Caffe).
# On another network a seed layer maps to the block at the same relative depth.
_INCEPTION_V3_BLOCKS = [f"mixed{i}" for i in range(11)]
_GOOGLENET_BLOCKS = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                     "inception4d", "inception4e", "inception5a", "inception5b"]  # fmt: skip


def map_seed_layer(seed_layer: str, seed_blocks: list[str], ours: list[str]) -> str:
    """The block among ``ours`` (a network's layers of kind ``block``, in depth order) at the
    same relative depth as ``seed_layer`` among ``seed_blocks``."""
    if seed_layer in ours:
        return seed_layer
    frac = (seed_blocks.index(seed_layer) + 1) / len(seed_blocks)
    return ours[max(0, round(frac * len(ours)) - 1)]


@dataclass(frozen=True)
class Preset:
    description: str
    params: dict[str, Any]
    seed_layers: tuple[tuple[str, float], ...] = ()
    seed_blocks: tuple[str, ...] = ()
    loss_scale_model: str | None = None  # the network whose activation scale max_loss assumes
    native: tuple[str, str] | None = None  # (model, layers): the seed's exact target there

    def make(self, model: str, blocks: Callable[[], list[str]]) -> dict[str, Any]:
        """The preset's field values for ``model``; ``blocks()`` gives its blocks in depth
        order (asked for only where seed layers are mapped)."""
        params = dict(self.params)
        if self.native and model == self.native[0]:
            params["layers"] = self.native[1]
        elif self.seed_layers:
            seeds, ours = list(self.seed_blocks), blocks()
            mapped: dict[str, float] = {}
            for layer, w in self.seed_layers:
                name = map_seed_layer(layer, seeds, ours)
                mapped[name] = mapped.get(name, 0.0) + w
            params["layers"] = ",".join(f"{n}={format_weight(w)}" for n, w in mapped.items())
            if self.loss_scale_model and model != self.loss_scale_model:
                # max_loss is in units of the seed network's activations; elsewhere it would
                # stop at once or never, so it stays off unless the user sets it.
                params["max_loss"] = None
        return params


# The Keras seed's loop (keras/examples/deep_dream.py, and the book's notebook): its units are
# InceptionV3's [-1, 1] input, where the step is 0.01 and K.epsilon() = 1e-7 floors mean |g|.
_KERAS = dict(
    objective="l2",
    border=2,
    keep_small_maps=False,
    grad_norm="l1",
    pixel_range="signed",
    grad_eps=1e-7,
    step_size=0.01,
    steps=20,
    octaves=3,
    octave_scale=1.4,
    detail="photo",
    max_loss=10.0,
    jitter=0,
    clip=False,
)

# The TF1 notebook's channel renders: the mean of one Inception5h channel from grey noise, steps
# of 1.0 on 0-255 pixels, unclipped; mapped by depth to inception4d where googlenet is absent.
_TF1 = dict(objective="mean", pixel_range="byte", step_size=1.0, max_loss=None, clip=False,
            init="noise")  # fmt: skip
_TF1_TARGET: dict[str, Any] = dict(seed_layers=(("inception4d", 1.0),),
                                   seed_blocks=tuple(_GOOGLENET_BLOCKS))  # fmt: skip

PRESETS: dict[str, Preset] = {
    "default": Preset(
        "curated recipe: the model's default layers, 4 octaves x 1.4, dream detail, jitter",
        {},
    ),
    "keras-classic": Preset(
        "Keras deep_dream.py: mixed2=0.2,mixed3=0.5,mixed4=2,mixed5=1.5, l2 with border 2 (maps "
        "of 4x4 or less count 0), step 0.01 and floor max(mean|g|, 1e-7) in [-1,1] units, 20 "
        "steps, 3 octaves x 1.4 resized half-pixel (keras.ops.image.resize), photo detail, "
        "max_loss 10 (InceptionV3 only), no jitter",
        dict(_KERAS, octave_resize="half-pixel"),
        seed_layers=(("mixed2", 0.2), ("mixed3", 0.5), ("mixed4", 2.0), ("mixed5", 1.5)),
        seed_blocks=tuple(_INCEPTION_V3_BLOCKS),
        loss_scale_model="inception_v3",
    ),
    "dlwp": Preset(
        "Deep Learning with Python (1st ed.) notebook 8.2: mixed2=0.2,mixed3=3,mixed4=2,"
        "mixed5=1.5, otherwise keras-classic, resized with scipy.ndimage.zoom(order=1) "
        "(corners), units [-1,1], max_loss 10 (InceptionV3 only)",
        dict(_KERAS, octave_resize="corners"),
        seed_layers=(("mixed2", 0.2), ("mixed3", 3.0), ("mixed4", 2.0), ("mixed5", 1.5)),
        seed_blocks=tuple(_INCEPTION_V3_BLOCKS),
        loss_scale_model="inception_v3",
    ),
    "tf-tutorial": Preset(
        "TF2 DeepDream tutorial: mean of mixed3 + mixed5, g / (std(g) + 1e-8) and step 0.01 in "
        "[-1,1] units, clipped, 100 steps per octave, octaves range(-2, 3) x 1.3 (two above "
        "the original) resized half-pixel (tf.image.resize) and back, random roll up to 512, "
        "tiles of 512",
        dict(
            objective="mean",
            grad_norm="std",
            grad_eps=1e-8,
            pixel_range="signed",
            step_size=0.01,
            steps=100,
            octaves=3,
            octaves_above=2,
            octave_scale=1.3,
            detail="none",
            octave_resize="half-pixel",
            max_loss=None,
            jitter=512,
            tile=512,
            tile_overlap=0,
            clip=True,
        ),
        seed_layers=(("mixed3", 1.0), ("mixed5", 1.0)),
        seed_blocks=tuple(_INCEPTION_V3_BLOCKS),
    ),
    "tf1-naive": Preset(
        "TF1 deepdream notebook's render_naive: mean of Inception5h "
        "mixed4d_3x3_bottleneck_pre_relu channel 139 (on googlenet; the block at that depth "
        "elsewhere), from grey noise, 20 "
        "steps of 1.0 in 0-255 units with g / (std(g) + 1e-8), one scale, no jitter, unclipped",
        dict(_TF1, grad_norm="std", grad_eps=1e-8, steps=20, octaves=1, jitter=0, tile=0),
        **_TF1_TARGET,
        native=("googlenet", "mixed4d_3x3_bottleneck_pre_relu:139"),
    ),
    "tf1-lapnorm": Preset(
        "TF1 deepdream notebook's render_lapnorm: mean of Inception5h "
        "mixed4d_3x3_bottleneck_pre_relu channel 65 (on googlenet) from grey noise, its "
        "lap_normalize (4 splits, zero 'SAME' padding, each band / max(rms, 1e-10)), steps of "
        "1.0 in 0-255 units, 10 steps x 3 octaves x 1.4 with TF1's resize_bilinear and level "
        "sizes (each int(float32(previous) * 1.4), ending at the output size), random roll, "
        "tiles of 512, unclipped",
        dict(
            _TF1,
            grad_norm="laplacian-tf1",
            lap_levels=4,
            grad_eps=1e-10,
            steps=10,
            octaves=3,
            octave_scale=1.4,
            detail="none",
            octave_resize="tf1",
            jitter=256,
            tile=512,
            tile_overlap=0,
        ),
        **_TF1_TARGET,
        native=("googlenet", "mixed4d_3x3_bottleneck_pre_relu:65"),
    ),
    "google-classic": Preset(
        "Google's deepdream.ipynb: inception_4c/output, step 1.5 / mean|g| (no floor) in 0-255 "
        "units, 10 steps, 4 octaves x 1.4 resized with scipy.ndimage.zoom(order=1) (corners), "
        "dream detail, jitter 32, clipped",
        dict(
            objective="l2",
            border=0,
            grad_norm="l1",
            pixel_range="byte",
            grad_eps=1e-30,  # the notebook divides by mean |g| unfloored; this only guards 0
            step_size=1.5,
            steps=10,
            octaves=4,
            octave_scale=1.4,
            detail="dream",
            max_loss=None,
            jitter=32,
            clip=True,
        ),
        seed_layers=(("inception4c", 1.0),),
        seed_blocks=tuple(_GOOGLENET_BLOCKS),
    ),  # fmt: skip
}


# The feature-visualisation recipe's name among the presets (featurevis: a FeatureVisConfig,
# not a DreamConfig) and what `inceptionism presets` says of it.
LUCID = "lucid"
LUCID_DESCRIPTION = (
    "feature visualisation from noise (Fourier, decorrelated colour, robustness transforms, "
    "Adam): channels, atlas noise, dream --class N --init noise; the default there"
)


def preset_names(lucid: bool) -> list[str]:
    """The --preset choices: the dream presets, and the lucid recipe where the command renders
    it (dream, atlas, channels)."""
    return [*PRESETS, *([LUCID] if lucid else [])]
