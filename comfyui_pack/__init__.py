"""inceptionism's ComfyUI nodes, for a clone of this repository: link or copy this folder into
ComfyUI's ``custom_nodes/`` under a name other than ``inceptionism`` (for example
``custom_nodes/comfyui-inceptionism``), in a ComfyUI whose Python has inceptionism installed
(``pip install -e /path/to/clone``). Without the install, the clone's ``src/`` is used."""

import sys
from pathlib import Path

try:
    import inceptionism.comfyui  # noqa: F401
except ImportError:  # a clone that is not installed: its sources, beside this folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from inceptionism.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
