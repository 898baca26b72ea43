"""``python -m attncli``: the same entry point as the ``attncli`` console script."""

from attncli.cli import main

raise SystemExit(main())
