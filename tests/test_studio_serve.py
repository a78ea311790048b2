"""`inceptionism serve` as a user runs it: bounds on the command line, a visitor's mistake one
line in the log, SIGTERM ends it with exit 0 and its files removed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

pytest.importorskip("gradio")


def test_serve_help_names_the_bounds(run_cli):
    r = run_cli("serve", "--help")
    assert r.code == 0 and "--max-queue" in r.out and "--time-limit" in r.out


@pytest.mark.slow
def test_a_mistake_is_one_line_and_sigterm_exits_cleanly(tmp_path):
    from gradio_client import Client, handle_file

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env["TMPDIR"] = str(tmp_path)
    log = (tmp_path / "log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inceptionism", "serve", "--port", str(port), "--max-queue", "4",
         "--time-limit", "60", "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while "studio on" not in (tmp_path / "log").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        assert any(p.name.startswith("inceptionism-studio-") for p in tmp_path.iterdir())
        client = Client(url, verbose=False)
        for _ in range(3):  # a visitor's mistake: no upload for an upload start
            with pytest.raises(Exception, match="upload a photo first"):
                client.predict(source="upload", model="efficientnet_lite0", api_name="/dream")
        text = tmp_path / "notes.png"
        text.write_text("hello")
        with pytest.raises(Exception, match="not an image file"):  # a text file named .png
            client.predict(upload=handle_file(str(text)), api_name="/dream")
        with pytest.raises(Exception, match="unknown layer"):
            client.predict(source="noise", atlas_layers="nope", api_name="/atlas")
        photo = tmp_path / "photo.png"
        Image.new("RGB", (48, 32), (200, 120, 40)).save(photo)
        *_, png = client.predict(upload=handle_file(str(photo)), model="efficientnet_lite0",
                                 steps=1, octaves=1, size=64, api_name="/dream")  # fmt: skip
        assert png
        cached = [p for p in tmp_path.rglob("gradio/*/*") if p.is_file()]
        assert cached  # the upload and the result, in Gradio's cache in the studio's folder
        assert all("inceptionism-studio-" in str(p) for p in cached)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "log").read_text()
    assert "Traceback" not in text, text
    assert text.count("upload a photo first") == 3, text  # one line per mistake
    assert text.count("not an image file") == 1 and text.count("unknown layer") == 1, text
    assert not any(p.name.startswith("inceptionism-studio-") for p in tmp_path.iterdir())
    assert not list(tmp_path.rglob("gradio"))  # every session's files went with it
