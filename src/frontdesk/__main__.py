"""``python -m frontdesk``: the same command line as the ``frontdesk`` script."""

from frontdesk.cli import main

main()
