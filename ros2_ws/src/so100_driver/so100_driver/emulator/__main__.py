"""``python -m so100_driver.emulator``: the same as the ``so100_bus_emulator`` command."""

import sys

from so100_driver.emulator.cli import main

sys.exit(main())
