"""Who signs the content credentials: the operator's certificate chain and key, or a local
identity (its own CA and a signing certificate under it) made on first start and kept."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("imagegen")


@dataclass(frozen=True)
class SigningIdentity:
    chain: bytes  # PEM: the signing certificate first, then its issuers
    key: bytes  # PEM private key
    alg: str  # C2PA's name of the signature algorithm the key makes: es256, ps256, ed25519…
    self_signed: bool  # made here: valid, but no trust list knows it


def _pem(value: str) -> bytes:
    """A PEM given inline (a Secret's value) or as a file path."""
    return value.encode() if value.lstrip().startswith("-----BEGIN") else Path(value).expanduser().read_bytes()


def _algorithm(key_pem: bytes) -> str:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "es256", 384: "es384", 521: "es512"}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ValueError(f"a {type(key).__name__} cannot sign C2PA manifests (use EC P-256/384/521, RSA or Ed25519)")


def operator_identity(cert: str, key: str) -> SigningIdentity:
    key_pem = _pem(key)
    return SigningIdentity(_pem(cert), key_pem, _algorithm(key_pem), self_signed=False)


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, signing_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:  # C2PA's certificate profile: an end-entity certificate with a signing purpose
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _new_local() -> tuple[bytes, bytes]:
    """A CA and a signing certificate under it (C2PA refuses a self-signed end-entity certificate):
    the chain's PEM (signer first) and the signing key's."""

    def name(common: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imagegen")]
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = name("imagegen local content credentials CA")
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    leaf = _certificate(name("imagegen local signer"), ca_name, key.public_key(), ca_key, ca=False)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key_pem


def _make_local(folder: Path) -> None:
    chain, key_pem = _new_local()
    # Both files made beside the folder, the key private to this user, then the folder renamed
    # into place: another process starting at the same time keeps whichever pair landed first,
    # never a key of one and a chain of the other.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}-{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(mode=0o700)
    try:
        for file, data, mode in (("key.pem", key_pem, 0o600), ("chain.pem", chain, 0o644)):
            fd = os.open(staging / file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        os.rename(staging, folder)
    except OSError:
        if not (folder / "key.pem").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def local_identity(folder: Path) -> SigningIdentity:
    """The identity kept in `folder`, made there on first use."""
    if not (folder / "key.pem").exists():
        _make_local(folder)
        log.info("made a local content credentials identity in %s", folder)
    key_pem = (folder / "key.pem").read_bytes()
    return SigningIdentity((folder / "chain.pem").read_bytes(), key_pem, _algorithm(key_pem), self_signed=True)


# Where a deployment's containers keep their one identity in a shared store (a modal.Dict).
SHARED_KEY = "local-identity"


def shared_identity(store: Any) -> SigningIdentity:
    """The local identity that every container sharing `store` signs with: any object with
    modal.Dict's `put(key, value, skip_if_exists=True)` (atomic: it says whether it wrote) and `get`.
    A container that finds none makes one; the first to put it wins, and all read the winner back.
    (A modal.Dict entry lapses after 7 days with no read or write: every container's start reads it.)"""
    kept = store.get(SHARED_KEY)
    if kept is None:
        chain, key_pem = _new_local()
        if store.put(SHARED_KEY, {"chain": chain, "key": key_pem}, skip_if_exists=True):
            log.info("made the deployment's local content credentials identity (shared by its containers)")
        kept = store.get(SHARED_KEY)
    return SigningIdentity(kept["chain"], kept["key"], _algorithm(kept["key"]), self_signed=True)
