"""The deployments file: where every part of lilypad finds the contracts.

One JSON file per network, ``deployments/<ecosystem>-<network>.json`` under
the project root (or ``$LILYPAD_DEPLOYMENTS_DIR``). Written atomically, and only
after the deployed system has been verified as fully wired.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from lilypad.exceptions import DeploymentNotFoundError

__all__ = ["CONTRACT_NAMES", "Deployment", "deployments_dir", "deployment_path", "load_deployment", "save_deployment"]

#: Contract key in the file -> contract type in the project.
CONTRACT_NAMES = {
    "token": "LilypadToken",
    "storage": "LilypadStorage",
    "payments": "LilypadPayments",
    "mediation": "LilypadMediation",
    "mediator_registry": "LilypadMediatorRegistry",
    "controller": "LilypadController",
    "job_creator": "LilypadOnChainJobCreator",
}


class Deployment(BaseModel):
    ecosystem: str
    network: str
    chain_id: int
    deployer: str
    block_number: int
    contracts: dict[str, str] = Field(description="key (see CONTRACT_NAMES) -> address")

    def address(self, key: str) -> str:
        return self.contracts[key]


def deployments_dir() -> Path:
    """``LILYPAD_DEPLOYMENTS_DIR`` (:class:`~lilypad.settings.LilypadSettings`), else
    ``deployments/`` of the checkout."""
    from lilypad.settings import get_settings

    configured = get_settings().deployments_dir
    if configured is not None:
        return configured
    return Path(__file__).resolve().parents[2] / "deployments"


def deployment_path(ecosystem: str, network: str, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{ecosystem}-{network}.json"


def load_deployment(ecosystem: str, network: str, directory: Path | None = None) -> Deployment:
    path = deployment_path(ecosystem, network, directory)
    if not path.is_file():
        raise DeploymentNotFoundError(path)
    return Deployment.model_validate_json(path.read_text())


def save_deployment(deployment: Deployment, directory: Path | None = None) -> Path:
    path = deployment_path(deployment.ecosystem, deployment.network, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(deployment.model_dump(), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path
