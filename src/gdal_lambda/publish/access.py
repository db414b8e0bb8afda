"""Who may use a published layer version: private unless asked (public, an organisation, accounts).

access = Access.parse(public=False, org_id="o-a1b2c3d4e5", accounts=["123456789012"])
access.statements()            # what add_layer_version_permission is given, stable ids
describe_policy(policy)        # "private", "public", "org o-…", "account …"
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import GdalLambdaError
from ..options import comma_list

STATEMENT_PREFIX = "gdal-lambda"

_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Statement:
    sid: str
    principal: str
    organization: str | None = None

    def kwargs(self) -> dict[str, str]:
        out = {
            "StatementId": self.sid,
            "Action": "lambda:GetLayerVersion",
            "Principal": self.principal,
        }
        if self.organization:
            out["OrganizationId"] = self.organization
        return out


@dataclass(frozen=True)
class Access:
    """Private unless asked: ``public`` (every account), ``org_id`` (one organisation), accounts."""

    public: bool = False
    org_id: str | None = None
    accounts: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, public: bool = False, org_id: str | None = None, accounts: Iterable[str] = ()
    ) -> Access:
        ids = tuple(dict.fromkeys(comma_list(*accounts)))
        access = cls(public=public, org_id=org_id or None, accounts=ids)
        access.check()
        return access

    def check(self) -> None:
        if self.public and (self.org_id or self.accounts):
            raise GdalLambdaError(
                "--public grants every AWS account already: drop --org-id/--account, or --public"
            )
        if self.org_id and not _ORG.match(self.org_id):
            raise GdalLambdaError(
                f"organisation id {self.org_id!r} is not valid: it looks like o-a1b2c3d4e5"
            )
        for account in self.accounts:
            if not _ACCOUNT.match(account):
                raise GdalLambdaError(f"account id {account!r} is not valid: it is 12 digits")

    def statements(self) -> list[Statement]:
        out: list[Statement] = []
        if self.public:
            out.append(Statement(f"{STATEMENT_PREFIX}-public", "*"))
        if self.org_id:
            out.append(Statement(f"{STATEMENT_PREFIX}-org-{self.org_id}", "*", self.org_id))
        out.extend(Statement(f"{STATEMENT_PREFIX}-account-{a}", a) for a in self.accounts)
        return out


def describe_policy(policy: dict[str, Any] | None) -> str:
    """Who a layer version is shared with: ``private``, ``public``, ``org o-…``, ``account …``."""
    if not policy:
        return "private"
    parts: list[str] = []
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            principal = principal.get("AWS")
        condition = statement.get("Condition") or {}
        org = statement.get("OrganizationId")  # moto's rendering; AWS uses a condition
        for test in condition.values():
            if isinstance(test, dict) and "aws:PrincipalOrgID" in test:
                org = test["aws:PrincipalOrgID"]
        if org:
            parts.append(f"org {org}")
        elif principal == "*":
            parts.append("public")
        elif principal:
            account = str(principal).split(":")[4] if ":" in str(principal) else str(principal)
            parts.append(f"account {account}")
    return ", ".join(dict.fromkeys(parts)) or "private"


def access_after(policy: dict[str, Any] | None, added: list[str]) -> str:
    """describe_policy of ``policy`` once the statements ``added`` (their sids) are in it."""
    statements = list((policy or {}).get("Statement", []))
    for sid in added:
        rest = sid.removeprefix(f"{STATEMENT_PREFIX}-")
        if rest == "public":
            statements.append({"Principal": "*"})
        elif rest.startswith("org-"):
            org = rest.removeprefix("org-")
            statements.append(
                {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}}}
            )
        elif rest.startswith("account-"):
            statements.append({"Principal": rest.removeprefix("account-")})
    return describe_policy({"Statement": statements} if statements else None)


def granted_text(sids: list[str], dry_run: bool) -> str:
    if not sids:
        return ""
    return f"{'would grant' if dry_run else 'granted'} {', '.join(sids)}"
