"""The built distribution, once per session (see :func:`tests.deploy.support.built_dist`)."""

from __future__ import annotations

import os

import pytest

from tests.deploy.support import Dist, built_dist


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return built_dist(shared)
