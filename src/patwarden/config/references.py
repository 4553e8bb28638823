"""Cross-reference checks on the raw config: roles, tenants, Key Vault readers, cycles.

They run on the raw YAML mapping (robust to schema errors elsewhere) so that they are reported
together with the schema problems. This is where a service principal named as the rotator is
refused, before any network call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from patwarden.config.problems import Problem
from patwarden.config.schema import APP_IDENTITY_KINDS
from patwarden.config.service_checks import service_problems
from patwarden.config.token_checks import token_problems
from patwarden.errors import DOCS

SP_ROTATOR_DOCS = f"{DOCS}/identities.md#why-a-service-principal-cannot-rotate"
_TENANT_KINDS = ("user", "service_principal", "workload_identity", "legacy_password")


def _identities(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = raw.get("identities")
    if not isinstance(found, dict):
        return {}
    return {str(name): body for name, body in found.items() if isinstance(body, dict)}


def _key_vault_refs(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every ``{key_vault: {..., identity: X}}`` reference (and Key Vault cache) under ``node``."""
    if isinstance(node, dict):
        inner = node.get("key_vault")
        if len(node) == 1 and isinstance(inner, dict) and "identity" in inner:
            yield f"{path}.key_vault.identity", inner["identity"]
        if node.get("kind") == "key_vault" and "identity" in node:
            yield f"{path}.identity", node["identity"]
        for key, value in node.items():
            yield from _key_vault_refs(value, f"{path}.{key}")


def semantic_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Cross-reference checks on the raw mapping (robust to schema errors elsewhere)."""
    identities = _identities(raw)
    azure_raw = raw.get("azure")
    azure: Mapping[str, Any] = azure_raw if isinstance(azure_raw, dict) else {}
    problems: list[Problem] = []
    if raw.get("organization") and raw.get("organizations"):
        problems.append(
            Problem(
                path="organizations",
                message="set either organization or organizations, not both",
                fix="keep organizations: [a, b] for several, or organization: a for one",
            )
        )
    elif not raw.get("organization") and not raw.get("organizations"):
        problems.append(
            Problem(
                path="organization",
                message="no Azure DevOps organization",
                fix="organization: contoso",
            )
        )
    problems += _role_problems(raw, identities)
    edges: dict[str, set[str]] = {name: set() for name in identities}
    for name, body in identities.items():
        kind = body.get("kind")
        if kind in _TENANT_KINDS and not body.get("tenant_id") and not azure.get("tenant_id"):
            problems.append(
                Problem(
                    path=f"identities.{name}.tenant_id",
                    message="no tenant for this identity",
                    fix="set identities.<name>.tenant_id or azure.tenant_id (the directory's GUID)",
                )
            )
        if kind == "legacy_password" and body.get("legacy_password_flow") is not True:
            problems.append(
                Problem(
                    path=f"identities.{name}.legacy_password_flow",
                    message="the password (ROPC) flow is deprecated, insecure and blocked by MFA",
                    fix=(
                        "prefer kind: user with `patwarden login`; to accept the risk set "
                        "legacy_password_flow: true"
                    ),
                )
            )
        for ref_path, target in _key_vault_refs(body, f"identities.{name}"):
            if target not in identities:
                problems.append(
                    Problem(
                        path=ref_path,
                        message=f"no identity named {target!r}",
                        fix=_names(identities),
                    )
                )
            else:
                edges[name].add(str(target))
    problems += _cycle_problems(edges)
    return problems + token_problems(raw) + service_problems(raw)


def _names(identities: Mapping[str, Any]) -> str:
    return "configured identities: " + (", ".join(sorted(identities)) or "none")


def _role_problems(
    raw: Mapping[str, Any], identities: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    problems: list[Problem] = []
    rotator = raw.get("rotator", "rotator")
    if not isinstance(rotator, str):
        pass  # not a name at all: the schema reports it
    elif rotator not in identities:
        problems.append(
            Problem(
                path="rotator" if "rotator" in raw else "identities",
                message=f"no identity named {rotator!r} to create and revoke PATs",
                fix="add identities.rotator: {kind: user, client_id: ...} or point rotator: at one",
            )
        )
    elif str(identities[rotator].get("kind")) in APP_IDENTITY_KINDS:
        kind = identities[rotator].get("kind")
        problems.append(
            Problem(
                path=f"identities.{rotator}.kind",
                message=(
                    f"a {kind} cannot be the rotator: the Azure DevOps PAT Lifecycle API "
                    "accepts only a "
                    "user's delegated Entra token and refuses service principals and managed "
                    "identities "
                    "('Service principals are not allowed to perform this action.')"
                ),
                fix=(
                    "either make the rotator a dedicated Entra user (kind: user) and run "
                    f"`patwarden login --identity {rotator}` once, or drop the PAT where the "
                    "consumer "
                    f"accepts Entra tokens directly; see {SP_ROTATOR_DOCS}"
                ),
            )
        )
    auditor = raw.get("auditor")
    if isinstance(auditor, str) and auditor not in identities:
        problems.append(
            Problem(
                path="auditor", message=f"no identity named {auditor!r}", fix=_names(identities)
            )
        )
    return problems


def _cycle_problems(edges: Mapping[str, set[str]]) -> list[Problem]:
    """A reads its secret with B, B reads its own with A: neither can ever start."""
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> None:
        for target in sorted(edges.get(node, ())):
            if target in trail:
                cycle = [*trail[trail.index(target) :], target]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.append(
                        Problem(
                            path=f"identities.{cycle[0]}",
                            message="secret references go round in a circle: " + " -> ".join(cycle),
                            fix="let one of these identities read its secret from env or a file",
                        )
                    )
            else:
                visit(target, [*trail, target])

    for start in sorted(edges):
        visit(start, [start])
    return problems
