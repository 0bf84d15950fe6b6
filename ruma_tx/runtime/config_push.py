"""
The C{[push]} configuration section: delivering notifications to push
gateways. Part of the schema in L{ruma_tx.runtime.config}; kept here with
its checks so that module stays small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NoReturn

from ruma_tx.services.push_delivery import DeliverySettings


@dataclass(frozen=True)
class PushConfig:
    """Notifications sent to push gateways (the requests go through C{[outbound]})."""

    # Send events' content to push gateways (Synapse: push.include_content);
    # false keeps message text off the gateways and the phone vendors' services.
    include_content: bool = True
    # After a failed push, wait this long before trying again, doubling each
    # time up to backoff_max_s (Synapse: 1 s to 1 h).
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 3600.0
    # A notification whose gateway has failed this long is skipped (Synapse: a day).
    give_up_after_s: float = 86400.0
    # Requests to push gateways in flight at once.
    max_concurrent_deliveries: int = 10

    def delivery_settings(self) -> DeliverySettings:
        return DeliverySettings(
            include_content=self.include_content, backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s, give_up_after_s=self.give_up_after_s,
            max_concurrent=self.max_concurrent_deliveries,
        )


def check_push(push: PushConfig, bad: Callable[[str, str], NoReturn]) -> None:
    """Refuse delivery settings that could never deliver (or never stop retrying at once)."""
    if not 0 < push.backoff_initial_s < float("inf"):
        bad("push.backoff_initial_s", "must be a positive number of seconds")
    if not push.backoff_initial_s <= push.backoff_max_s < float("inf"):
        bad("push.backoff_max_s", "must be a number of seconds, at least backoff_initial_s")
    if not 0 < push.give_up_after_s < float("inf"):
        bad("push.give_up_after_s", "must be a positive number of seconds")
    if push.max_concurrent_deliveries < 1:
        bad("push.max_concurrent_deliveries", "must be at least 1")
