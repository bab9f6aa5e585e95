"""Who is calling and what they may do: the principal every authenticated call carries."""

from __future__ import annotations

from dataclasses import dataclass

from lattice.errors import PermissionDenied

INFERENCE = "lattice:compute:inference"
MANAGE_RUNTIMES = "lattice:compute:personal_runtime:manage"
ALL_SCOPES = frozenset({INFERENCE, MANAGE_RUNTIMES})


@dataclass(frozen=True)
class Principal:
    """An account acting through one credential.

    `kind` is `key` (a developer key `sk_…`), `oauth` (a user-authorized access token),
    `admin` (the static `LATTICE_API_KEY`), `anonymous` (no credential, on a gateway that
    allows it) or `daemon` (a personal runtime's relay credential, `lattice_id` set).
    """

    kind: str
    account_id: str
    scopes: frozenset[str]
    credential_id: str = ""
    """Which credential: a key id, a token subject; for fairness and metering, never a secret."""
    lattice_id: str = ""

    @property
    def caller(self) -> str:
        """The identity admission is fair between."""
        return f"{self.kind}:{self.credential_id or self.account_id}"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"this credential lacks the scope {scope!r}",
                reason="INSUFFICIENT_SCOPES",
                metadata={"scope": scope},
            )


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes from OAuth's space-separated form or the CLI's commas."""
    return frozenset(s for s in text.replace(",", " ").split() if s)
