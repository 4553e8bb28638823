"""`patwarden config check | schema | cache-key`: validate, print the schema, make a key."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from patwarden.cli.options import LazyPath, app_context, config_option

if TYPE_CHECKING:
    from pathlib import Path


@click.group("config")
def config() -> None:
    """Check the configuration file and related helpers."""


@config.command("check")
@config_option()
def check(config_path: str | None) -> None:
    """Validate the config file; print OK or every problem (exit 2). Makes no network call.

    Also prints a `warning:` line for each setting that weakens a secret's protection
    (docs/security.md), with its key path and fix; warnings do not change the exit code.
    """
    loaded = app_context(config_path).config
    identities = ", ".join(
        f"{name} ({identity.kind})" for name, identity in loaded.identities.items()
    )
    click.echo(f"OK: {loaded.source}")
    click.echo(f"  organizations: {', '.join(loaded.orgs)}")
    click.echo(f"  identities: {identities}")
    click.echo(
        f"  rotator: {loaded.rotator}" + (f", auditor: {loaded.auditor}" if loaded.auditor else "")
    )
    click.echo(f"  tokens: {len(loaded.tokens)}")
    from patwarden.config.security_checks import security_warnings

    for warning in security_warnings(loaded):  # valid, but weaker than it should be
        click.echo(f"warning: {warning}")


@config.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file (for editors and CI linting)."""
    from patwarden.config.model import Config

    click.echo(json.dumps(Config.model_json_schema(), indent=2, sort_keys=True))


@config.command("cache-key")
@click.option(
    "--output-file",
    "output_file",
    type=LazyPath(dir_okay=False),
    help="Write the key to this file (created 0600, never overwritten) instead of printing it.",
)
@click.option(
    "--output",
    "legacy_output",
    type=LazyPath(dir_okay=False),
    hidden=True,  # the old name: --output is the output format everywhere else
)
def cache_key(output_file: Path | None, legacy_output: Path | None) -> None:
    """Generate a random key for the encrypted token cache.

    Reference it from the config as cache: {key: {file: PATH}} or {key: {env: NAME}}.
    """
    from patwarden.identity.cache_crypto import generate_cache_key
    from patwarden.sinks.safe_files import create_private_file

    if legacy_output is not None:
        if output_file is not None:
            raise click.UsageError("give the key file once, with --output-file")
        click.echo(
            "warning: `config cache-key --output FILE` is deprecated; use --output-file FILE "
            "(--output is the output format in every other command).",
            err=True,
        )
    output = output_file or legacy_output
    key = generate_cache_key()
    if output is None:
        click.echo(key.reveal())  # asked for explicitly: stdout is the point of this command
        return
    try:  # created with O_EXCL under a random temp name, linked in place: never overwrites
        create_private_file(output, (key.reveal() + "\n").encode("ascii"), purpose="key directory")
    except FileExistsError:
        raise click.UsageError(
            f"{output} already exists; refusing to overwrite a key in use"
        ) from None
    click.echo(f"wrote a new cache key to {output} (mode 0600)", err=True)
