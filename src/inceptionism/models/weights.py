"""Finding weight files and loading them with strict, explained key and shape checks."""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from inceptionism.errors import MissingExtraError, WeightsError


@dataclass(frozen=True)
class PackagedWeights:
    """A state dict shipped inside a Python package (no network needed)."""

    package: str  # the pip name, for messages
    module: str  # the import name
    filename: str

    def path(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError as e:
            raise WeightsError(
                f"the weights package {self.package!r} is not installed "
                f"(pip install {self.package}), or pass --weights FILE"
            ) from e
        path = Path(str(mod.__file__)).parent / "models" / self.filename
        if not path.is_file():
            raise WeightsError(f"{self.package} is installed but {path} is missing; reinstall it")
        return path

    def describe(self) -> str:
        return f"present: packaged ({self.package})"


def cache_dir() -> Path:
    """Where downloaded weights live: $INCEPTIONISM_CACHE, else the platform's user cache."""
    env = os.environ.get("INCEPTIONISM_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("inceptionism")) / "weights"


# A base URL that replaces the canonical host's folder, for mirrors and air-gapped installs.
MIRROR_ENV = "INCEPTIONISM_WEIGHTS_MIRROR"


@dataclass(frozen=True)
class RemoteWeights:
    """A published checkpoint: found in the cache, else downloaded once, verified, cached.

    ``sha256`` may be a prefix: torchvision's file names carry the first 8 hex digits of their
    sha256, and that is what torch.hub checks too.
    """

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def source_url(self) -> str:
        mirror = os.environ.get(MIRROR_ENV)
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url

    def cached(self) -> Path:
        return cache_dir() / self.filename

    def present(self) -> bool:
        return self.cached().is_file()

    def path(self) -> Path:
        path = self.cached()
        if not path.is_file():
            download(self.source_url(), path, self.sha256)
        return path

    def describe(self) -> str:
        if self.present():
            return f"present: cached at {self.cached()}"
        return f"missing: downloaded on first use from {self.source_url()} (or --weights FILE)"


@dataclass(frozen=True)
class LocalWeights:
    """A weights file the user named (``--weights FILE``)."""

    file: Path

    def path(self) -> Path:
        if not self.file.is_file():
            raise WeightsError(f"weights file not found: {self.file}")
        return self.file

    def describe(self) -> str:
        return f"present: {self.file}"


@dataclass(frozen=True)
class NoWeights:
    """The weights travel inside the network (TorchScript) or come only from --weights."""

    text: str

    def path(self) -> None:
        return None

    def describe(self) -> str:
        return self.text


class WeightsSource(Protocol):
    def path(self) -> Path | None: ...

    def describe(self) -> str: ...


Norm = tuple[float, float, float]


@dataclass(frozen=True)
class Weights:
    """A weights entry: where the file comes from, the input normalisation the network was
    trained with (on [0, 1] RGB pixels: (x - mean) / std) and the build keywords the file needs
    (Keras's InceptionV3 pools without the padding). A model's entry is its default; a file given
    with --weights, and a Keras file above all, is an entry of its own (``for_file``)."""

    source: WeightsSource
    mean: Norm
    std: Norm
    build: tuple[tuple[str, Any], ...] = ()
    # The file's format: "state_dict" (a .pth in our key layout) or "keras" (converted on read).
    format: str = "state_dict"

    def path(self) -> Path | None:
        return self.source.path()

    def describe(self) -> str:
        return self.source.describe()

    def with_file(self, file: Path, **changes: Any) -> Weights:
        return replace(self, source=LocalWeights(file), **changes)


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``dest`` atomically (a temporary file, renamed once its hash matches),
    with a progress line on stderr. Any failure is one WeightsError naming what to do instead."""
    import sys
    import tempfile
    import urllib.error
    import urllib.request

    def failed(reason: str) -> WeightsError:
        return WeightsError(
            f"cannot download {url} ({reason}). Download it on a connected machine and put "
            f"{dest.name} in the cache folder {dest.parent}, or pass --weights FILE "
            f"(set {MIRROR_ENV} to use a mirror)"
        )

    try:  # connect first: a machine without network gets its error before anything is written
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise failed(f"HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise failed(f"no connection: {reason}") from e
    with response:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise failed(f"cannot create the cache folder: {e.strerror or e}") from e
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                try:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        _download_progress(sys.stderr, dest.name, done, total)
                except OSError as e:
                    raise failed(f"interrupted after {done} bytes: {e}") from e
                if done:
                    sys.stderr.write("\n")
            got = digest.hexdigest()
            if not got.startswith(sha256.lower()):
                raise WeightsError(
                    f"{url} has sha256 {got[: max(8, len(sha256))]}..., expected {sha256}...: "
                    "the download is corrupt or the file changed; nothing was cached"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)


def _download_progress(stream, name: str, done: int, total: int) -> None:
    mb = done / 1e6
    if total:
        line = f"\rdownloading {name}: {mb:.1f}/{total / 1e6:.1f} MB ({100 * done / total:.0f}%)"
    else:
        line = f"\rdownloading {name}: {mb:.1f} MB"
    stream.write(line)
    stream.flush()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so recipes cost one hash per file."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a .pth file safely (tensors only), with a clear error if broken."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if is_safetensors(path):  # tensors only, as the file's header says
        return read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for truncated or foreign files
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {first}") from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return obj


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names the keys and shapes that differ."""
    expected = module.state_dict()
    # Checkpoints saved before BatchNorm counted its batches lack these counters; they do not
    # affect inference, so they are filled in rather than reported.
    state = dict(state)
    for k, v in expected.items():
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            problems.append(f"{label} {len(items)}: {', '.join(items[:5])}{more}")
    if problems:
        raise WeightsError(f"weights {source} do not fit this architecture: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


SAFETENSORS_SUFFIX = ".safetensors"


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors (the format holds a JSON header and tensors, nothing that
    runs), with the same one-line errors as a .pth; without the package, the extra to install."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise MissingExtraError(f"reading {path.name}", "hub") from None
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {first}") from e


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` holds a safetensors file (an 8-byte header length, then a JSON
    header), whatever its name."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and head[:2] != b"PK"
