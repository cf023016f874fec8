"""The dataset API's FastAPI application, built over the current deployment and instance."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from fastapi import FastAPI

from config import load_deployment
from platform_core.api import v1
from platform_core.api.asset_graph import DAGSTER_URL_VARIABLE, AssetGraph
from platform_core.api.catalog import Catalog
from platform_core.api.identity import Authenticator
from platform_core.api.oidc import OidcSettings, OidcVerifier
from platform_core.api.products import ProductCatalog
from platform_core.api.sharing import ProtocolError, Sharing, error_response, router
from platform_core.api.signing import Signer, signing_key
from platform_core.api.tokens import TokenStore
from platform_core.audit.trail import AuditTrail
from platform_core.dagster_home import prepare_dagster_home
from platform_core.storage_factory import storage_for

API_FOLDER = "api"
URL_LIFETIME_SECONDS = 15 * 60
AUDIT_FOLDER = "dataset_api"
AUDIT_WRITER = "dataset-api"


def api_folder() -> Path:
    """``<DAGSTER_HOME>/api``: the token store and the generated signing key."""
    return prepare_dagster_home() / API_FOLDER


def create_app(url_lifetime: float = URL_LIFETIME_SECONDS) -> FastAPI:
    """The Delta Sharing server and the catalog of the deployment the environment names."""
    folder = api_folder()
    deployment = load_deployment()
    instance, storage = dg.DagsterInstance.get(), storage_for(deployment)
    audit = AuditTrail(storage=storage, environment=deployment.environment, principal=AUDIT_FOLDER)
    audit.bind_writer(AUDIT_WRITER, instance)
    catalog = Catalog(instance, storage, deployment.environment, audit)
    sso = OidcSettings.from_environment()
    tokens = Authenticator(TokenStore(folder), OidcVerifier(sso) if sso else None)
    sharing = Sharing(catalog, tokens, Signer(signing_key(folder)), url_lifetime)
    graph = AssetGraph(os.environ.get(DAGSTER_URL_VARIABLE))
    app = FastAPI(
        title="DataOps dataset API",
        description="Data products: a searchable catalog, direct reads, and Delta Sharing.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.catalog = catalog
    app.router.add_event_handler("shutdown", audit.flush)
    app.add_exception_handler(ProtocolError, error_response)
    app.include_router(router(sharing), include_in_schema=False)
    app.include_router(v1.router(sharing, ProductCatalog(catalog, graph)))

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        """Readiness: the policy loads and the instance answers."""
        catalog.policy()
        catalog.instance.get_latest_materialization_event(dg.AssetKey(["dataops", "readyz"]))
        return {"status": "ready"}

    return app
