"""Judges' accounts and their access tokens: issuing, revoking, signing in.

A token is shown once, when issued; the store keeps only its SHA-256, so a leaked database
holds no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from oversight.study.db import id_of, retry
from oversight.study.schema import AccessToken, JudgeAccount, iso

TOKEN_PREFIX = "ovs_"


def hash_token(token: str) -> str:
    # Tokens carry 192 random bits, so a fast unsalted hash is enough: there is nothing to
    # brute-force, and a lookup by hash keeps sign-in one indexed query.
    return hashlib.sha256(token.strip().encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    judge_id: int
    name: str
    is_admin: bool


def issue_token(engine: Engine, name: str, admin: bool = False) -> str:
    """A new token for judge `name` (created if new). The plain token is returned only here."""
    name = name.strip()
    if not name:
        raise ValueError("a judge needs a name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)

    def tx() -> str:
        with Session(engine) as s:
            judge = s.exec(select(JudgeAccount).where(JudgeAccount.name == name)).first()
            if judge is None:
                judge = JudgeAccount(name=name, is_admin=admin)
                s.add(judge)
                s.flush()
            elif admin and not judge.is_admin:
                judge.is_admin = True
                s.add(judge)
            s.add(AccessToken(judge_id=id_of(judge), token_hash=hash_token(token), hint=token[-4:]))
            s.commit()
            return token

    return retry(engine, tx)


def revoke(engine: Engine, name: str) -> int:
    """Revoke every active token of judge `name`; returns how many. Their work is kept."""

    def tx() -> int:
        with Session(engine) as s:
            judge = s.exec(select(JudgeAccount).where(JudgeAccount.name == name)).first()
            if judge is None:
                return 0
            n = s.execute(
                update(AccessToken)
                .where(col(AccessToken.judge_id) == judge.id, col(AccessToken.revoked_at).is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            s.commit()
            return n

    return retry(engine, tx)


def authenticate(engine: Engine, token: str) -> Identity | None:
    """The judge a token belongs to, or None for an unknown or revoked token."""
    if not token or not token.strip():
        return None
    with Session(engine) as s:
        row = s.exec(
            select(JudgeAccount)
            .join(AccessToken, col(AccessToken.judge_id) == col(JudgeAccount.id))
            .where(AccessToken.token_hash == hash_token(token))
            .where(col(AccessToken.revoked_at).is_(None))
        ).first()
        return None if row is None else Identity(id_of(row), row.name, row.is_admin)


def accounts(engine: Engine) -> list[dict[str, Any]]:
    """Every judge with the number of active tokens (for the admin's token page)."""
    with Session(engine) as s:
        active = dict(
            s.execute(
                select(AccessToken.judge_id, func.count())
                .where(col(AccessToken.revoked_at).is_(None))
                .group_by(AccessToken.judge_id)
            ).all()
        )
        return [
            {
                "judge": j.name,
                "role": "admin" if j.is_admin else "judge",
                "active_tokens": active.get(j.id, 0),
                "created": iso(j.created_at),
            }
            for j in s.exec(select(JudgeAccount).order_by(JudgeAccount.id))
        ]
