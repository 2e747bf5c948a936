"""Oversight protocols, siblings behind one interface (`protocols.base.Protocol`).

A new protocol is a new module here plus a config file in `conf/protocol/`.
"""

from protocols.base import (
    Batch,
    JudgmentRecord,
    Protocol,
    ProtocolContext,
    SFTPhase,
    Signal,
    Turns,
)

__all__ = [
    "Batch",
    "JudgmentRecord",
    "Protocol",
    "ProtocolContext",
    "SFTPhase",
    "Signal",
    "Turns",
]
