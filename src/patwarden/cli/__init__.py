"""The command line: one thin module per command group, loaded only when used."""
