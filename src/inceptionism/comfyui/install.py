"""``python -m inceptionism.comfyui install COMFYUI_FOLDER``: the pack's folder in ComfyUI's
``custom_nodes/``, a one-file package that re-exports this package's node mappings. Run it with
the Python ComfyUI runs on, after ``pip install inceptionism`` there.

The folder is not named ``inceptionism``: ComfyUI imports a pack under its folder's name, which
would hide this package."""

from __future__ import annotations

import sys
from pathlib import Path

PACK = "comfyui-inceptionism"
ENTRY = (
    '"""inceptionism\'s ComfyUI nodes (written by `python -m inceptionism.comfyui install`)."""\n'
    "from inceptionism.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS\n\n"
    '__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]\n'
)


def install(comfyui: Path) -> Path:
    """Write ``COMFYUI/custom_nodes/comfyui-inceptionism/__init__.py``; returns its path."""
    nodes = comfyui / "custom_nodes"
    if not nodes.is_dir():
        raise SystemExit(f"{comfyui}: not a ComfyUI folder (it has no custom_nodes/)")
    entry = nodes / PACK / "__init__.py"
    entry.parent.mkdir(exist_ok=True)
    entry.write_text(ENTRY)
    return entry


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "install":
        print("usage: python -m inceptionism.comfyui install COMFYUI_FOLDER", file=sys.stderr)
        return 2
    print(f"wrote {install(Path(args[1]))}; restart ComfyUI to load the nodes")
    return 0
