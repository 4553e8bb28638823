"""The Azure clouds patwarden knows, and the Key Vault scope of each.

A Key Vault token is only ever asked for one scope (``patwarden.identity.keyvault``): the vault
audience of the vault's cloud. A vault on a Microsoft vault domain names its cloud by its host; a
vault on a custom host name (a private endpoint, the emulator) gets the scope its
``azure.custom_vault_hosts`` entry names (``cloud:`` or ``scope:``), else the vault scope of the
configured cloud — the cloud of ``azure.authority_host`` — never silently the public one.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

CloudName = Literal["public", "china", "usgov", "germany"]

# The vault DNS suffix of each cloud.
CLOUD_VAULT_SUFFIX: dict[str, str] = {
    "public": ".vault.azure.net",
    "china": ".vault.azure.cn",
    "usgov": ".vault.usgovcloudapi.net",
    "germany": ".vault.microsoftazure.de",
}
# The cloud of each Entra authority host.
AUTHORITY_CLOUD: dict[str, str] = {
    "login.microsoftonline.com": "public",
    "login.chinacloudapi.cn": "china",
    "login.partner.microsoftonline.cn": "china",
    "login.microsoftonline.us": "usgov",
    "login.microsoftonline.de": "germany",
}


def cloud_vault_scope(cloud: str) -> str:
    """``https://vault.<suffix>/.default`` of *cloud* (one of :data:`CLOUD_VAULT_SUFFIX`)."""
    return f"https://{CLOUD_VAULT_SUFFIX[cloud].lstrip('.')}/.default"


def authority_cloud(authority_host: str) -> str | None:
    """The cloud of an Entra authority URL, or None for another authority (an emulator)."""
    return AUTHORITY_CLOUD.get((urlsplit(authority_host).hostname or "").lower())


def domain_cloud(vault_url: str) -> str | None:
    """The cloud whose vault domain holds *vault_url*'s host, or None for a custom host name."""
    host = (urlsplit(vault_url).hostname or "").lower()
    for cloud, suffix in CLOUD_VAULT_SUFFIX.items():
        if host.endswith(suffix):
            return cloud
    return None
