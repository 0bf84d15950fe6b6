"""The request a user-interactive auth session is bound to, read off the HTTP request."""
from __future__ import annotations

from typing import Any, Mapping

from twisted.web.iweb import IRequest

from ruma_tx.matrix.uia import UiaRequest, uia_request


def bound_request(request: IRequest, body: Mapping[str, Any]) -> UiaRequest:
    """
    The L{UiaRequest} of C{request}: its method, its path (without the
    query string) and C{body}.
    """
    return uia_request(
        request.method.decode("ascii", "replace"), request.path.decode("ascii", "replace"), body
    )
