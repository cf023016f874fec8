"""Placeholder until the real local servers land: cloud targets are not reachable yet."""

import pytest


def _unavailable(name: str):
    @pytest.fixture(name=name)
    def fixture() -> None:
        pytest.fail(f"{name}: the local server for this target is not wired yet")

    return fixture


s3_server = _unavailable("s3_server")
azurite_server = _unavailable("azurite_server")
gcs_server = _unavailable("gcs_server")
onprem_target_env = _unavailable("onprem_target_env")
aws_target_env = _unavailable("aws_target_env")
azure_target_env = _unavailable("azure_target_env")
gcp_target_env = _unavailable("gcp_target_env")
