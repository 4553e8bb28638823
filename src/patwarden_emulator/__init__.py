"""A local stand-in for Entra ID, Azure DevOps and Key Vault, served over HTTPS on loopback.

The real clients (azure-identity, msal, azure-keyvault-secrets, httpx) talk to it unmodified except
for URLs, ``disable_instance_discovery=True``, ``verify_challenge_resource=False`` and the CA
bundle.
Behaviour follows ``azure-api-contract.md``; see ``docs/emulator.md``.
"""
