"""
Key queries and cross-signing (spec: "End-to-End Encryption", "Key
management API" and "Cross-signing"): C{POST /keys/query},
C{GET /keys/changes}, C{POST /keys/device_signing/upload} and
C{POST /keys/signatures/upload}.
"""
from __future__ import annotations

from ruma_tx.http.parsing import federation_timeout_ms, get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.uia import bound_request
from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param
from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.matrix.stream_token import InvalidToken, StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.cross_signing import CrossSigning, KeyQueries
from ruma_tx.services.guard import Requester


class CrossSigningApi:
    """
    @param queries: the L{ruma_tx.services.cross_signing.KeyQueries}.
    @param cross_signing: the L{ruma_tx.services.cross_signing.CrossSigning}.
    """

    def __init__(self, *, queries: KeyQueries, cross_signing: CrossSigning) -> None:
        self._queries = queries
        self._cross_signing = cross_signing

    @endpoint("POST", "/keys/query", guest=True)
    async def query(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        wanted = get_field(body, "device_keys", dict)
        for user_id, device_ids in wanted.items():
            if not is_valid_user_id(user_id):
                raise invalid_param(f"Invalid user id {user_id!r}")
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json("'device_keys' must map user ids to lists of device ids")
        return await self._queries.query(requester, wanted, timeout_ms=federation_timeout_ms(body))

    @endpoint("GET", "/keys/changes")
    async def changes(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        from_token, to_token = _token(request, "from"), _token(request, "to")
        return await self._queries.changes(requester, from_token.stream, to_token.stream)

    @endpoint("POST", "/keys/device_signing/upload")
    async def upload_signing_keys(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        await self._cross_signing.upload_keys(requester, body, request=bound_request(request, body))
        return {}

    @endpoint("POST", "/keys/signatures/upload")
    async def upload_signatures(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        for user_id, signed in body.items():
            if not isinstance(signed, dict) or not all(isinstance(o, dict) for o in signed.values()):
                raise bad_json("The body must map user ids to objects of signed objects")
        return await self._cross_signing.upload_signatures(requester, body)


def _token(request: MatrixRequest, name: str) -> StreamToken:
    text = query_arg(request, name)
    if text is None:
        raise missing_param(f"Missing query parameter {name!r}")
    try:
        return StreamToken.parse(text)
    except InvalidToken:
        raise invalid_param(f"Invalid {name!r} token") from None
