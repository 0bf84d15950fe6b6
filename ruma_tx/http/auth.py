"""
Reading the access token a request carries (spec: "Using access tokens").
"""
from __future__ import annotations

from twisted.web.server import Request

from ruma_tx.matrix.errors import missing_token, unknown_token


def extract_access_token(request: Request) -> str | None:
    """
    Read the token from C{Authorization: Bearer} or the C{access_token}
    query parameter.

    @raise Unauthorized: M_UNKNOWN_TOKEN if it is not ASCII, M_MISSING_TOKEN
        for an Authorization header that is not a Bearer token.
    """
    header = request.getHeader(b"authorization")
    if header is not None:
        try:
            value = header.decode("ascii")
        except UnicodeDecodeError:
            raise unknown_token() from None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise missing_token("Authorization header is not a Bearer token")
        token = token.strip()
    else:
        values = request.args.get(b"access_token")
        if not values:
            return None
        try:
            token = values[0].decode("ascii")
        except UnicodeDecodeError:
            raise unknown_token() from None
    if not token.isascii():
        raise unknown_token()
    return token
