"""
Reporting content as pure rules (spec: client-server-api "Reporting
Content"): the bodies of the event, room and user reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ruma_tx.matrix.errors import bad_json, missing_param

#: The longest reason kept (Synapse refuses longer user reports; we hold
#: every kind to it, so one report cannot fill the admins' table).
MAX_REASON_LENGTH = 1000


@dataclass(frozen=True)
class ReportRequest:
    """
    A report's parsed body.

    @ivar score: an event report's C{score} (-100, most offensive, to 0):
        in the spec up to v1.17, kept when a client still sends it.
    """

    reason: str | None
    score: int | None = None


def parse_report(body: Mapping[str, Any], *, reason_required: bool, with_score: bool = False
                 ) -> ReportRequest:
    """
    @param reason_required: room and user reports need a C{reason} (it may
        be blank); an event report's is optional.
    @param with_score: accept an event report's C{score} (an integer, as
        Synapse checks; its range is the client's business).
    @raise BadRequest: M_MISSING_PARAM without a required reason,
        M_BAD_JSON for a field of the wrong type or a reason over
        L{MAX_REASON_LENGTH} characters.
    """
    reason = body.get("reason")
    if reason is None:
        if reason_required:
            raise missing_param("Missing parameter: reason")
    elif not isinstance(reason, str):
        raise bad_json("'reason' must be a string")
    elif len(reason) > MAX_REASON_LENGTH:
        raise bad_json(f"'reason' must be at most {MAX_REASON_LENGTH} characters")
    score = body.get("score") if with_score else None
    if score is not None and type(score) is not int:
        raise bad_json("'score' must be an integer")
    return ReportRequest(reason, score)
