"""OAuth subjects (issue #22, item 8): an empty `sub` is no account, and no subject can name a
built-in account (the static admin key's, or a developer key's `acct_…`)."""

from __future__ import annotations

import pathlib

import pytest

from lattice.errors import Unauthenticated
from lattice.server.authenticator import Authenticator
from lattice.server.oauth import OAuthVerifier
from tests.personal_runtime_fixtures import AUDIENCE, ISSUER, access_token, oauth_env

SCOPES = "lattice:compute:inference lattice:compute:personal_runtime:manage"


@pytest.fixture
def verifier(tmp_path: pathlib.Path) -> OAuthVerifier:
    keys_file = pathlib.Path(oauth_env(tmp_path)["LATTICE_OAUTH_KEYS_FILE"])
    return OAuthVerifier(ISSUER, keys_file, AUDIENCE)


@pytest.mark.parametrize("subject", ["", "   "])
def test_an_empty_subject_is_refused(verifier: OAuthVerifier, subject: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(access_token(subject, SCOPES))
    assert refused.value.reason == "ACCESS_TOKEN_INVALID"


async def test_a_subject_never_names_a_built_in_account(verifier: OAuthVerifier) -> None:
    authenticator = Authenticator(static_key="admin-key-0123456789", admin_account="acct_admin", oauth=verifier)
    admin = await authenticator.authenticate("admin-key-0123456789")
    posing = await authenticator.authenticate(access_token("acct_admin", SCOPES))
    assert admin.account_id == "acct_admin"
    assert posing.account_id != admin.account_id and not posing.account_id.startswith("acct_")
    assert posing.account_id == "oauth:acct_admin"  # its own namespace, still telling who it is
    user = await authenticator.authenticate(access_token("user-42", SCOPES))
    assert user.account_id == "oauth:user-42"
