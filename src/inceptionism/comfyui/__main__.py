import sys

from inceptionism.comfyui.install import main

sys.exit(main())
