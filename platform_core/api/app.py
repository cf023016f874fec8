"""The dataset API's FastAPI application, built over the current deployment and instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from fastapi import FastAPI

from config import load_deployment
from platform_core.api.catalog import Catalog
from platform_core.api.sharing import ProtocolError, Sharing, error_response, router
from platform_core.api.signing import Signer, signing_key
from platform_core.api.tokens import TokenStore
from platform_core.dagster_home import prepare_dagster_home
from platform_core.storage_factory import storage_for

API_FOLDER = "api"
URL_LIFETIME_SECONDS = 15 * 60


def api_folder() -> Path:
    """``<DAGSTER_HOME>/api``: the token store and the generated signing key."""
    return prepare_dagster_home() / API_FOLDER


def create_app(url_lifetime: float = URL_LIFETIME_SECONDS) -> FastAPI:
    """The Delta Sharing server of the deployment the environment names."""
    folder = api_folder()
    deployment = load_deployment()
    catalog = Catalog(dg.DagsterInstance.get(), storage_for(deployment), deployment.environment)
    sharing = Sharing(catalog, TokenStore(folder), Signer(signing_key(folder)), url_lifetime)
    app = FastAPI(title="DataOps dataset API (Delta Sharing)", docs_url=None, redoc_url=None)
    app.add_exception_handler(ProtocolError, error_response)
    app.include_router(router(sharing))
    return app
