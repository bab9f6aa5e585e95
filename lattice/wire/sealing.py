"""Encryption (libsodium via PyNaCl) for what travels on the relay, bound to its envelope.

A work payload is sealed to the daemon's X25519 key; it carries a fresh key for the work item's
answers, which the daemon encrypts with it (a secret box: one sealed box per streamed piece would
cost a key exchange each). Whatever carries the stream (Envoy, a broker between replicas) sees only
ciphertext. Every message repeats the runtime and work ids; `open_box` checks them against the
envelope, so a box cannot be replayed onto another work item or runtime.
"""

from __future__ import annotations

import pathlib
from typing import TypeVar

import nacl.utils
from google.protobuf.message import DecodeError, Message
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox

from lattice.errors import BackendFailed, InvalidArgument

M = TypeVar("M", bound=Message)


def check_public_key(public_key: bytes) -> None:
    """Refuses what cannot be a daemon's X25519 key: the wrong length, or a low-order point (all zero,
    the identity, …), with which every key exchange gives the all-zero secret: libsodium refuses to
    seal to it, so every chat to that runtime would fail."""
    if len(public_key) != PublicKey.SIZE:
        raise InvalidArgument("publicKey must be a 32-byte X25519 key (base64 in JSON)", field="public_key")
    try:
        crypto_scalarmult(nacl.utils.random(PrivateKey.SIZE), public_key)
    except RuntimeError:  # libsodium's answer to an all-zero shared secret
        raise InvalidArgument(
            "publicKey is a low-order X25519 point, not a key: send the public key of a fresh private key",
            field="public_key",
        ) from None


def seal(message: Message, recipient: bytes) -> bytes:
    """`message` sealed to the holder of `recipient`'s private key."""
    return bytes(SealedBox(PublicKey(recipient)).encrypt(message.SerializeToString()))


def new_answer_key() -> bytes:
    return nacl.utils.random(SecretBox.KEY_SIZE)


def lock(message: Message, key: bytes) -> bytes:
    """`message` in a secret box with `key` (random nonce included)."""
    return bytes(SecretBox(key).encrypt(message.SerializeToString()))


def open_sealed(sealed: bytes, key: PrivateKey, kind: type[M], *, lattice_id: str, work_id: str) -> M:
    return open_box(sealed, SealedBox(key), kind, lattice_id=lattice_id, work_id=work_id)


def open_box(
    sealed: bytes, box: SealedBox[PrivateKey] | SecretBox, kind: type[M], *, lattice_id: str, work_id: str
) -> M:
    """The message inside `sealed`, checked to belong to `lattice_id`'s work item `work_id`."""
    try:
        message = kind.FromString(box.decrypt(sealed))
    except (CryptoError, DecodeError) as error:
        raise BackendFailed(
            f"a sealed relay message for work {work_id} did not open", reason="RELAY_SEAL_INVALID"
        ) from error
    if getattr(message, "lattice_id") != lattice_id or getattr(message, "work_id") != work_id:  # noqa: B009
        raise BackendFailed(
            f"a sealed relay message is bound to another work item than {work_id}", reason="RELAY_SEAL_INVALID"
        )
    return message


def load_or_create_key(path: pathlib.Path) -> PrivateKey:
    """The gateway's relay key, made once and kept (mode 0600) so daemons paired before a restart still
    reach it."""
    if path.exists():
        return PrivateKey(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = PrivateKey.generate()
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_bytes(bytes(key))
    temporary.replace(path)
    return key
