"""
Validating live responses against the Matrix spec's OpenAPI document
(client-server-api-v1.19.json in the spec folder) with openapi-core.

The spec folder is C{RUMA_SPEC_DIR}, by default C{../shared/spec} beside
this repository. Without it the suite still runs, without schema
validation (the session header says so); C{RUMA_REQUIRE_SPEC=1} (set by
C{.ci/run}) makes a missing spec an error instead.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.response.exceptions import DataValidationError
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_DIR = Path(os.environ.get("RUMA_SPEC_DIR")
                or Path(__file__).resolve().parents[1].parent / "shared" / "spec").resolve()
SPEC_FILE = SPEC_DIR / "client-server-api-v1.19.json"
#: Whether the spec is here to validate against.
SPEC_AVAILABLE = SPEC_FILE.is_file()

#: For tests whose whole subject is the spec's own text or examples.
needs_spec = pytest.mark.skipif(not SPEC_AVAILABLE, reason=f"no Matrix spec at {SPEC_DIR}")


@dataclass
class SpecRequest:
    host_url: str
    path: str
    method: str
    body: bytes | None
    query: dict = field(default_factory=dict)
    content_type: str = "application/json"

    def __post_init__(self):
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, item) for k, v in self.query.items()
                                      for item in (v if isinstance(v, list) else [v])]),
            header=Headers({"Content-Type": self.content_type}),
        )


@dataclass
class SpecResponse:
    status_code: int
    data: bytes
    content_type: str
    headers: Headers


class SpecValidator:
    """Loads the spec once; validates (request, response) pairs."""

    def __init__(self, base_url: str = "http://127.0.0.1"):
        self.base_url = base_url
        self._api = self._load()

    def _load(self) -> OpenAPI | None:
        """The API to validate against, or C{None} without a spec folder."""
        if not SPEC_AVAILABLE:
            return None
        document = json.loads(SPEC_FILE.read_text())
        document["servers"] = [{"url": self.base_url}]
        return OpenAPI.from_dict(document)

    def documents(self, method: str, path: str) -> bool:
        """Whether the spec has an operation for this request."""
        if self._api is None:
            raise RuntimeError("no Matrix spec to ask: mark the test needs_spec")
        try:
            self._api.validate_response(
                SpecRequest(self.base_url, path, method.lower(), None),
                SpecResponse(599, b"{}", "application/json", Headers()),
            )
        except (PathNotFound, OperationNotFound):
            return False
        except Exception:
            return True
        return True

    def validate(self, method: str, path: str, query: dict, body: bytes | None,
                 status: int, data: bytes, headers: dict) -> None:
        """
        Raise if the response does not match the spec. Requests to paths
        the spec does not document are not checked; an error status the
        operation does not list (a 401 for a missing token, a 429) must
        still be a standard Matrix error body.
        """
        if self._api is None:
            return  # no spec here: the session header said so
        request = SpecRequest(self.base_url, path, method.lower(), body, query)
        if status == 206:
            # A part of a download (a Range request): the spec documents the
            # whole (200), whose headers a part has too.
            status = 200
        response = SpecResponse(
            status, data, headers.get("content-type", "application/json"), Headers(headers)
        )
        try:
            try:
                self._api.validate_response(request, response)
            except DataValidationError as e:
                # A download's body is documented as application/octet-stream
                # meaning any bytes: its Content-Type is the upload's (the
                # header's own description), so validate it as such.
                missing = e.__cause__
                if not (isinstance(missing, MediaTypeNotFound)
                        and missing.availableMimetypes == ["application/octet-stream"]):
                    raise
                self._api.validate_response(request, SpecResponse(
                    status, data, "application/octet-stream", Headers(headers)))
        except (PathNotFound, OperationNotFound):
            return
        except ResponseNotFound:
            if status < 400:
                raise
            body = json.loads(data)
            assert isinstance(body.get("errcode"), str) and body["errcode"].startswith("M_"), body
            assert isinstance(body.get("error"), str), body
