"""sys.exit while attncli imports the module."""

import sys

sys.exit("no import for you")
