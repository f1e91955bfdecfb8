"""``python -m cosi_driver`` is the ``cosi-driver`` command."""

from cosi_driver.cli.main import main

raise SystemExit(main())
