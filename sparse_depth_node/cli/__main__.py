"""``python -m sparse_depth_node.cli``: the ``sparse-depth`` command."""

import sys

from . import main

sys.exit(main())
