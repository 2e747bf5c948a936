"""Oversight protocols, siblings behind one interface (`protocols.base.Protocol`).

A new protocol is a new module here plus a config file in `conf/protocol/`.
"""

from protocols.base import JudgmentRecord, Protocol, ProtocolContext, Signal

__all__ = ["JudgmentRecord", "Protocol", "ProtocolContext", "Signal"]
