"""`python -m federator` is the `federator` command."""

from federator.cli.main import main

raise SystemExit(main())
