"""``patwarden demo``: the README's first command, a narrated rotation against the emulator."""

from __future__ import annotations

import click


@click.command("demo")
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the work directory (config, state, emulator log) and print where it is.",
)
def demo(keep: bool) -> None:
    """Run a full rotation against a throwaway local emulator; needs no Azure and no setup.

    Starts the emulator, writes a config, logs in (the emulator approves the device code), rotates
    a PAT into a Key Vault secret, a variable group and a file, shows status, rotates again and
    shows the previous PAT revoked after its grace period. Takes about half a minute.
    """
    from patwarden.demo import run_demo

    kept = run_demo(echo=click.echo, keep=keep)
    if kept is not None:
        click.echo(f"Kept the work directory {kept} (its emulator is stopped).")
