"""Real sample photos that ship inside installed packages (scikit-image, matplotlib).

Any CLI input may be written ``sample:NAME`` (``sample:coffee``, ``sample:grace_hopper``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inceptionism.errors import ImageError, UnknownNameError, install_hint

PREFIX = "sample:"
_SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field",
    "retina", "horse", "brick", "grass", "gravel", "camera",
)  # fmt: skip


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def list_samples() -> dict[str, Path]:
    """Sample name -> file, for the photos whose package is installed."""
    found: dict[str, Path] = {}
    sk = _package_dir("skimage")
    if sk is not None:
        for stem in _SKIMAGE_PHOTOS:
            for suffix in (".png", ".jpg"):
                if (sk / "data" / (stem + suffix)).is_file():
                    found[stem] = sk / "data" / (stem + suffix)
    mpl = _package_dir("matplotlib")
    if mpl is not None:
        hopper = mpl / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if hopper.is_file():
            found["grace_hopper"] = hopper
    return found


def is_sample(text: str) -> bool:
    return str(text).startswith(PREFIX)


def sample_path(text: str) -> Path:
    """Resolve ``sample:NAME`` to the file inside its package."""
    name = str(text)[len(PREFIX) :]
    samples = list_samples()
    if not samples:
        raise ImageError(
            f"no sample photos installed: {install_hint('samples')} "
            "(scikit-image and matplotlib ship them)"
        )
    if name not in samples:
        raise UnknownNameError("sample", name, sorted(samples))
    return samples[name]
