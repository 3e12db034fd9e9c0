"""`python -m alignbeam.cli`, as the `alignbeam` command."""

from alignbeam.cli import main

main()
