"""The emulator's commands: `patwarden emulator` (the local Entra ID + Azure DevOps + Key Vault
stand-in) and `patwarden demo` (a narrated rotation against it).

The product's CLI lists them by name and imports this module only when one of them runs, so
`patwarden` itself never imports the emulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from patwarden.cli.options import LazyPath

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to serve on."
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--state-dir",
    type=LazyPath(file_okay=False),
    help="Keep PATs, secrets and groups here across restarts (default: a temporary directory).",
)
@click.option(
    "--ready-file",
    type=LazyPath(dir_okay=False),
    help="Write the ready JSON document to this file (mode 0600) once serving (default: "
    "ready.json in the state directory). Only this file holds the admin API's bearer token.",
)
@click.option("--organization", default="contoso", show_default=True, help="Organization name.")
@click.option(
    "--auto-approve-device-codes",
    is_flag=True,
    help="Approve every device-code sign-in at once as the rotator user (no admin call needed).",
)
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
    help="Start the emulated Azure DevOps' clock at this UTC date (PAT validity, policies, "
    "expiry); it runs on from there. Entra ID and Key Vault keep the real time.",
)
def emulator(
    host: str,
    port: int,
    state_dir: Path | None,
    ready_file: Path | None,
    organization: str,
    auto_approve_device_codes: bool,
    now: datetime | None,
) -> None:
    """Serve emulated Entra ID, Azure DevOps and Key Vault over HTTPS on loopback.

    Prints one JSON line with the URLs, CA bundle and identities when ready, then runs until
    SIGINT/SIGTERM. See docs/emulator.md.
    """
    from patwarden_emulator.server import serve

    serve(
        host=host,
        port=port,
        state_dir=state_dir,
        ready_file=ready_file,
        organization=organization,
        auto_approve_device_codes=auto_approve_device_codes,
        now=now.replace(tzinfo=UTC) if now else None,
    )


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
    from patwarden_emulator.demo import run_demo

    kept = run_demo(echo=click.echo, keep=keep)
    if kept is not None:
        click.echo(f"Kept the work directory {kept} (its emulator is stopped).")
