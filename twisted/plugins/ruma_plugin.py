"""twistd plugin: C{twistd ruma --config etc/ruma.toml} runs the homeserver."""
from twisted.application.service import ServiceMaker

ruma = ServiceMaker(
    "ruma_tx",
    "ruma_tx.runtime.service",
    "A Matrix homeserver (ruma_tx).",
    "ruma",
)
