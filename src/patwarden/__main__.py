"""`python -m patwarden` runs the CLI."""

from patwarden.cli.main import main

main()
