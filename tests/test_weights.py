"""The weights resolver: --weights first, then the cache, then a verified download; offline gets
one clear error. A local HTTP server stands in for the canonical host."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

from inceptionism.errors import WeightsError
from inceptionism.models import ModelSpec, RemoteWeights, Weights, get_model, register_model
from inceptionism.models import efficientnet_lite as lite
from inceptionism.models.registry import _REGISTRY
from inceptionism.models.weights import MIRROR_ENV, cache_dir

NAME = "test_remote_lite0"


@pytest.fixture(scope="module")
def lite0_bytes(tmp_path_factory) -> bytes:
    """A real lite0 checkpoint's bytes (the embedded one), to serve and to cache."""
    from inceptionism.models import get_spec

    return get_spec("efficientnet_lite0").weights.path().read_bytes()


@pytest.fixture
def served(tmp_path, lite0_bytes):
    """An HTTP server on localhost serving a folder; yields (folder, base URL)."""
    root = tmp_path / "server"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("INCEPTIONISM_CACHE", str(folder))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return folder


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes


def register_remote(url: str, sha256: str) -> ModelSpec:
    _REGISTRY.pop(NAME, None)
    return register_model(
        ModelSpec(
            name=NAME,
            description="lite0 behind a download, for tests",
            build=partial(lite.build, "efficientnet_lite0"),
            weights=Weights(RemoteWeights(url=url, sha256=sha256), (0.5,) * 3, (0.5,) * 3),
            default_layers=(("block10", 1.0),),
        )
    )


@pytest.fixture
def remote(served, lite0_bytes):
    root, base = served
    sha = hashlib.sha256(lite0_bytes).hexdigest()
    name = f"lite0-{sha[:8]}.pth"
    (root / name).write_bytes(lite0_bytes)
    spec = register_remote(f"{base}/{name}", sha[:8])
    yield spec, root, base
    _REGISTRY.pop(NAME, None)


def test_cache_folder_follows_the_environment(cache):
    assert cache_dir() == cache


def test_download_verifies_caches_and_is_reused(remote, cache, capsys):
    spec, root, _ = remote
    model = get_model(NAME)
    cached = cache / spec.weights.source.filename
    assert cached.is_file() and model.weights_path == cached
    assert "downloading" in capsys.readouterr().err
    assert [p.name for p in cache.iterdir()] == [cached.name]  # no temporary file left
    (root / spec.weights.source.filename).unlink()  # the server no longer has it: the cache must do
    again = get_model(NAME)
    assert again.weights_path == cached
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(model(x), again(x))


def test_explicit_weights_win_over_cache_and_download(remote, cache, tmp_path, lite0_bytes):
    spec, root, _ = remote
    (root / spec.weights.source.filename).unlink()  # a download would fail
    mine = tmp_path / "mine.pth"
    mine.write_bytes(lite0_bytes)
    assert get_model(NAME, weights=mine).weights_path == mine
    assert not cache.exists()  # nothing fetched, nothing cached


def test_hash_mismatch_is_refused_and_nothing_cached(served, cache, lite0_bytes):
    root, base = served
    (root / "lite0-00000000.pth").write_bytes(lite0_bytes)
    register_remote(f"{base}/lite0-00000000.pth", "00000000")
    try:
        with pytest.raises(WeightsError, match="sha256"):
            get_model(NAME)
    finally:
        _REGISTRY.pop(NAME, None)
    assert list(cache.iterdir()) == []


def test_offline_error_names_url_file_cache_and_weights_option(cache, run_cli, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/lite0-12345678.pth"
    register_remote(url, "12345678")
    try:
        photo = tmp_path / "in.png"
        from PIL import Image

        Image.new("RGB", (64, 48), (120, 80, 40)).save(photo)
        out = tmp_path / "out" / "dream.png"
        r = run_cli("dream", photo, "--model", NAME, "-o", out, "-q")
    finally:
        _REGISTRY.pop(NAME, None)
    assert r.code == 2
    assert len(r.err_lines) == 1, r.err
    line = r.err_lines[0]
    for needed in (url, "lite0-12345678.pth", str(cache), "--weights"):
        assert needed in line, (needed, line)
    assert not out.exists() and not out.parent.exists()


def test_mirror_replaces_the_host(remote, cache, monkeypatch):
    spec, _, base = remote
    monkeypatch.setenv(MIRROR_ENV, base + "/")
    assert spec.weights.source.source_url() == f"{base}/{spec.weights.source.filename}"
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}/models")
    with pytest.raises(WeightsError, match="/models/lite0-"):
        get_model(NAME)


def test_http_error_is_one_clear_error(served, cache):
    _, base = served
    register_remote(f"{base}/missing-abcdef12.pth", "abcdef12")
    try:
        with pytest.raises(WeightsError, match="HTTP 404"):
            get_model(NAME)
    finally:
        _REGISTRY.pop(NAME, None)


def test_models_command_says_whether_weights_are_present(remote, cache, run_cli):
    r = run_cli("models")
    row = next(line for line in r.out.splitlines() if line.startswith(NAME))
    assert "missing" in row
    get_model(NAME)
    row = next(line for line in run_cli("models").out.splitlines() if line.startswith(NAME))
    assert "present" in row and str(cache) in row
    lite_row = next(ln for ln in r.out.splitlines() if ln.startswith("efficientnet_lite0"))
    assert "present" in lite_row


def test_a_truncated_cached_file_is_reported(cache, lite0_bytes):
    cache.mkdir()
    register_remote("http://127.0.0.1:9/lite0-aaaaaaaa.pth", "aaaaaaaa")
    try:
        (cache / "lite0-aaaaaaaa.pth").write_bytes(lite0_bytes[: len(lite0_bytes) // 3])
        with pytest.raises(WeightsError, match="cannot read weights file"):
            get_model(NAME)
    finally:
        _REGISTRY.pop(NAME, None)
    assert Path(cache / "lite0-aaaaaaaa.pth").exists()  # the user's file is not deleted
