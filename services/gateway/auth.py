"""Who is calling: an API key in metadata/headers, or a client certificate (mTLS).

Checked in every gateway handler (gRPC and REST) before any work, so a call without a
valid key costs nothing but this lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from grpc import aio

from parlons.hosts import is_loopback
from parlons.services.common.errors import InvalidArgument, Unauthenticated
from parlons.services.gateway.tenants import ANONYMOUS, Tenant, TenantRegistry, anonymous_tenant

MODES = ("auto", "api_key", "none")

_MISSING = (
    "missing API key: send metadata 'authorization: Bearer <key>' (or 'x-api-key: <key>'), "
    "or a client certificate registered for your tenant"
)


def resolve_mode(mode: str, tenants_path: str, hosts: Iterable[str]) -> str:
    """"auto" becomes "api_key" with a tenants file, "none" on loopback-only listeners.

    Anything else is refused: a gateway reachable from the network without keys must be
    asked for explicitly (auth = "none").
    """
    if mode not in MODES:
        raise InvalidArgument(f"[gateway] auth must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "api_key" and not tenants_path:
        raise InvalidArgument('[gateway] auth = "api_key" needs [gateway] tenants_path')
    if mode != "auto":
        return mode
    if tenants_path:
        return "api_key"
    exposed = [h for h in hosts if not is_loopback(h)]
    if exposed:
        raise InvalidArgument(
            f"the gateway listens on {', '.join(exposed)} without tenants: set [gateway] tenants_path "
            '(see `parlons tenants create`), or auth = "none" to serve without authentication'
        )
    return "none"


def _key_from_pairs(pairs: Iterable[tuple[str, str | bytes]]) -> str | None:
    for name, value in pairs:
        name = name.lower()
        text = value.decode() if isinstance(value, bytes) else value
        if name == "authorization":
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("the authorization header must be 'Bearer <key>'")
        if name == "x-api-key" and text.strip():
            return text.strip()
    return None


def peer_identities(context: aio.ServicerContext) -> list[str]:
    """Common name and subject alternative names of the client certificate, if any."""
    try:
        auth = context.auth_context() or {}
    except Exception:
        return []
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth.get(key, []):
            names.append(value.decode() if isinstance(value, bytes) else str(value))
    return list(dict.fromkeys(names))


class Authenticator:
    def __init__(self, mode: str, registry: TenantRegistry | None) -> None:
        if mode == "api_key" and registry is None:
            raise InvalidArgument("API key authentication needs a tenants file")
        self.mode = mode
        self.registry = registry

    def _anonymous(self) -> Tenant:
        # With auth off, an "anonymous" tenant in the file (if any) gives its glossaries.
        found = self.registry.get(ANONYMOUS) if self.registry else None
        return found or anonymous_tenant()

    def from_key(self, key: str | None, identities: Iterable[str] = ()) -> Tenant:
        if self.mode == "none":
            return self._anonymous()
        assert self.registry is not None
        tenants = self.registry.current()
        if key:
            return tenants.authenticate_key(key)
        tenant = tenants.authenticate_identity(identities)
        if tenant is None:
            raise Unauthenticated(_MISSING)
        return tenant

    def from_grpc(self, context: aio.ServicerContext) -> Tenant:
        if self.mode == "none":
            return self._anonymous()
        key = _key_from_pairs(tuple(context.invocation_metadata() or ()))
        return self.from_key(key, peer_identities(context) if not key else ())

    def from_headers(self, headers: Mapping[str, str], identities: Iterable[str] = ()) -> Tenant:
        """REST: a bearer key, else the client certificate's names (`peercert_names`)."""
        if self.mode == "none":
            return self._anonymous()
        pairs = [(k, v) for k, v in headers.items() if k.lower() in ("authorization", "x-api-key")]
        key = _key_from_pairs(pairs)
        return self.from_key(key, identities if not key else ())


def peercert_names(peercert: Mapping[str, object] | None) -> list[str]:
    """CN and SAN values of a verified peer certificate as Python's ssl module gives it."""
    if not peercert:
        return []
    names: list[str] = []
    subject = cast(Iterable[Iterable[tuple[str, object]]], peercert.get("subject", ()))
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                names.append(str(value))
    for _kind, value in cast(Iterable[tuple[str, object]], peercert.get("subjectAltName", ())):
        names.append(str(value))
    return list(dict.fromkeys(names))
