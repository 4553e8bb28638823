"""The variable group sink against the emulated Azure DevOps (real HTTP, real Entra tokens)."""

from __future__ import annotations

import dataclasses
import functools
import threading
from pathlib import Path
from typing import Any

import pytest

from patwarden.plugins.testing import SinkContract, fake_meta, fake_pat
from patwarden.rotation.ports import SinkVersion
from patwarden.sinks.errors import (
    SinkConfigError,
    SinkRefused,
    SinkUnavailable,
    SinkWriteFailed,
)
from patwarden.sinks.locks import shared_lock
from patwarden.sinks.spec import SinkContext
from patwarden.sinks.variable_group import VariableGroupSink
from tests.conftest import RunningEmulator
from tests.support import sinks
from tests.support.sinks import group_variables

PROJECT = "infra"  # the emulator's seeded project
OTHERS = {
    "OTHER_SECRET": {"value": "keep-me-secret", "isSecret": True},
    "PLAIN": {"value": "plain-value"},
}


def create_group(emulator: RunningEmulator, name: str = "gitops", **variables: Any) -> int:
    return sinks.create_group(emulator, name, PROJECT, variables={**OTHERS, **variables})


def make_sink(context: SinkContext, group: int | str, **keys: Any) -> VariableGroupSink:
    spec = {"kind": "variable_group", "project": PROJECT, "group": group, "variable": "FLUX_PAT"}
    return VariableGroupSink.from_spec({**spec, **keys}, context)


class TestVariableGroupContract(SinkContract):
    kind = "variable_group"
    reads_back = False
    restores_previous = False

    @pytest.fixture(params=["by_id", "by_name"])
    def sink(
        self, request: pytest.FixtureRequest, emulator: RunningEmulator, writer_context: SinkContext
    ) -> VariableGroupSink:
        group_id = create_group(emulator)
        return make_sink(writer_context, group_id if request.param == "by_id" else "GitOps")


def test_write_changes_only_our_variable(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    group_id = create_group(emulator)
    sink = make_sink(writer_context, group_id)
    pat, meta = fake_pat(), fake_meta()
    sink.write(pat, meta)
    variables = group_variables(emulator, group_id)
    assert variables["FLUX_PAT"] == {"value": pat.reveal(), "isSecret": True}
    assert variables["OTHER_SECRET"] == {"value": "keep-me-secret", "isSecret": True}
    assert variables["PLAIN"] == {"value": "plain-value"}
    companion = variables["FLUX_PAT_PATWARDEN"]
    assert "isSecret" not in companion
    assert f"authorizationId={meta.authorization_id}" in companion["value"]
    assert f"operationId={meta.operation_id}" in companion["value"]
    assert pat.reveal() not in companion["value"]


def test_an_existing_variable_without_marker_is_unmanaged(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    group_id = create_group(emulator, FLUX_PAT={"value": "hand-made", "isSecret": True})
    sink = make_sink(writer_context, group_id)
    assert sink.current_version() == SinkVersion(ref="unmanaged", authorization_id=None)


def test_restore_none_removes_variable_and_companion(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    group_id = create_group(emulator)
    sink = make_sink(writer_context, group_id)
    assert sink.current_version() is None
    sink.write(fake_pat(), fake_meta())
    assert sink.restore(None) is True
    assert set(group_variables(emulator, group_id)) == set(OTHERS)
    assert group_variables(emulator, group_id)["OTHER_SECRET"]["value"] == "keep-me-secret"
    assert sink.current_version() is None


def test_a_missing_group_is_refused(emulator: RunningEmulator, writer_context: SinkContext) -> None:
    sink = make_sink(writer_context, "no-such-group")
    with pytest.raises(SinkRefused, match="'no-such-group' does not exist in project 'infra'"):
        sink.write(fake_pat(), fake_meta())


def test_a_missing_group_id_is_refused(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    with pytest.raises(SinkRefused, match="Variable group with id 424242 does not exist"):
        make_sink(writer_context, 424242).write(fake_pat(), fake_meta())


def test_describe(writer_context: SinkContext) -> None:
    sink = make_sink(writer_context, "gitops")
    assert sink.describe() == f"variable_group {writer_context.organization}/infra/gitops:FLUX_PAT"


def test_organization_is_required_somewhere(writer_context: SinkContext) -> None:
    context = SinkContext(
        credential=writer_context.credential, azure_devops=writer_context.azure_devops
    )
    with pytest.raises(SinkConfigError, match="organization: is required"):
        make_sink(context, "gitops")
    assert make_sink(context, "gitops", organization="fabrikam").organization == "fabrikam"


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"variable": "BAD NAME"}, "sink.variable: String should match pattern"),
        ({"group": ""}, "sink.group: Value error, must be the group's id (a positive number) or"),
        ({"group": 0}, "sink.group: Value error, must be the group's id"),
        ({"group": None}, "sink.group: Value error, must be the group's id"),
        ({"project": ""}, "sink.project: String should have at least 1 character"),
        # Found by tests/reliability: path injection passed `config check` and failed at run time.
        ({"project": "../../_apis"}, "sink.project: Value error, Invalid Azure DevOps project"),
        ({"project": "a/b"}, "sink.project: Value error, Invalid Azure DevOps project name"),
    ],
)
def test_invalid_entries_name_the_key(
    writer_context: SinkContext, keys: dict[str, Any], problem: str
) -> None:
    spec = {"kind": "variable_group", "project": PROJECT, "group": "g", "variable": "V", **keys}
    with pytest.raises(SinkConfigError) as caught:
        VariableGroupSink.from_spec(spec, writer_context)
    assert problem in str(caught.value)


def test_a_lost_put_response_is_a_write_that_may_have_happened(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    group_id = create_group(emulator)
    sink = make_sink(writer_context, group_id)
    emulator.admin(
        "POST",
        "/faults",
        json={
            "route": r"^PUT /devops/[^/]+/_apis/distributedtask/variablegroups/",
            "kind": "status",
            "status": 500,
            "after": True,
            "count": 5,
        },
    )
    pat = fake_pat()
    with pytest.raises(SinkWriteFailed, match="may or may not have taken effect") as caught:
        sink.write(pat, fake_meta())
    assert pat.reveal() not in str(caught.value)
    # It did happen (after: true): the engine must treat the sink as unknown, as it does.
    assert group_variables(emulator, group_id)["FLUX_PAT"]["value"] == pat.reveal()


def test_an_unreachable_group_is_unavailable_and_unchanged(
    emulator: RunningEmulator, writer_context: SinkContext
) -> None:
    group_id = create_group(emulator, FLUX_PAT={"value": "old", "isSecret": True})
    sink = make_sink(writer_context, group_id)
    emulator.admin(
        "POST",
        "/faults",
        json={
            "route": r"^GET /devops/[^/]+/[^/]+/_apis/distributedtask/variablegroups/",
            "kind": "status",
            "status": 503,
            "count": 5,
        },
    )
    with pytest.raises(SinkUnavailable, match="Cannot reach variable_group"):
        sink.write(fake_pat(), fake_meta())
    assert group_variables(emulator, group_id)["FLUX_PAT"]["value"] == "old"


@pytest.mark.parametrize("shared", [False, True], ids=["process-lock", "shared-lock"])
def test_tokens_sharing_a_group_written_at_once_keep_both_variables(
    emulator: RunningEmulator, writer_context: SinkContext, tmp_path: Path, shared: bool
) -> None:
    # Found by tests/reliability: the group is read, changed and put back whole; two writers at
    # once each put back the other's variable as it was, and one rotation was lost.
    group_id = create_group(emulator)
    lock = functools.partial(shared_lock, tmp_path / "locks") if shared else None
    context = dataclasses.replace(writer_context, lock=lock)
    first = make_sink(context, group_id, variable="FIRST_PAT")
    second = make_sink(context, group_id, variable="SECOND_PAT")
    emulator.admin(
        "POST", "/faults", json={"route": "variablegroups", "kind": "latency", "latency_ms": 150}
    )
    pats = [fake_pat(), fake_pat()]
    threads = [
        threading.Thread(target=sink.write, args=(pat, fake_meta()))
        for sink, pat in zip((first, second), pats, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    variables = group_variables(emulator, group_id)
    assert variables["FIRST_PAT"]["value"] == pats[0].reveal()
    assert variables["SECOND_PAT"]["value"] == pats[1].reveal()
