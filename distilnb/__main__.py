"""`python -m distilnb`: the command line (see distilnb.cli)."""

from distilnb.cli import main

raise SystemExit(main())
