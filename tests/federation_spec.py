"""
Validating live federation responses against the Matrix spec's
Server-Server API: the OpenAPI files of C{data/api/server-server} in the
spec folder (the same C{RUMA_SPEC_DIR} as L{spec}), each declaring its
own base path (C{/_matrix/federation/v1}, C{/v2}, C{/_matrix/key/v2}, ...).

Their paths are merged, under their base paths, into one document whose
base URI is that folder, so the files' relative C{$ref}s resolve as
written; a file's own C{#/...} references are anchored to that file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema_path.loaders import JsonschemaSafeLoader
from openapi_core import OpenAPI
from yaml import load

from spec import SPEC_DIR, SpecValidator

SERVER_SERVER_DIR = SPEC_DIR / "data" / "api" / "server-server"
#: Whether the Server-Server API definitions are here to validate against.
FEDERATION_SPEC_AVAILABLE = (SERVER_SERVER_DIR / "transactions.yaml").is_file()


def _anchored(node: Any, file_name: str) -> Any:
    """C{node} with its local references (C{#/components/...}) pointing into C{file_name}."""
    if isinstance(node, dict):
        return {key: (file_name + value if key == "$ref" and isinstance(value, str) and value.startswith("#")
                      else _anchored(value, file_name))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_anchored(value, file_name) for value in node]
    return node


def _base_path(document: dict) -> str:
    """The C{basePath} of a file's C{{protocol}://{hostname}{basePath}} server."""
    [server] = document["servers"]
    return server["variables"]["basePath"]["default"]


def server_server_document(directory: Path, base_url: str) -> dict:
    """One OpenAPI document of every file in C{directory}, its paths under their base paths."""
    merged: dict = {
        "openapi": "3.1.0",
        "info": {"title": "Matrix Server-Server API", "version": "1.0.0"},
        "servers": [{"url": base_url}],
        "paths": {},
        "components": {"securitySchemes": {}},
    }
    for path in sorted(directory.glob("*.yaml")):
        document = _anchored(load(path.read_text(), JsonschemaSafeLoader), path.name)
        for template, item in document.get("paths", {}).items():
            full = _base_path(document) + template
            if full in merged["paths"]:
                raise ValueError(f"{path.name}: {full} is declared by another file too")
            merged["paths"][full] = item
        # The same scheme (signedRequest, a $ref into definitions/) in every file.
        merged["components"]["securitySchemes"].update(document.get("components", {}).get("securitySchemes", {}))
    return merged


class FederationSpecValidator(SpecValidator):
    """L{SpecValidator} for the Server-Server API: the same C{validate} and C{documents}."""

    def _load(self) -> OpenAPI | None:
        if not FEDERATION_SPEC_AVAILABLE:
            return None
        document = server_server_document(SERVER_SERVER_DIR, self.base_url)
        return OpenAPI.from_dict(document, base_uri=SERVER_SERVER_DIR.as_uri() + "/")
