"""Who may speak for a tenant on a backend: the gateway, and only once it has proven it.

In a split deployment the gateway authenticates tenants and tells each backend whose
call it is (`x-parlons-tenant`: a tenant's glossaries hang on it). A backend that took
that header from anyone would hand any tenant's glossaries to whoever reaches its port.
So a backend honours the header only from a caller that proves to be the gateway:

* mutual TLS: the backend requires client certificates (`[server] tls_client_ca`) and
  the certificate's common name or a subject alternative name is one of
  `[server] trusted_gateway_identities`;
* or a shared secret (`[server] gateway_secret`, sent by the gateway as
  `x-parlons-gateway-secret`, `[gateway] backend_secret`), for when TLS ends in front of
  the backends (a service mesh): compared in constant time.

With `require_gateway`, a backend refuses every other caller (UNAUTHENTICATED). With
neither configured, the header is taken as before, for a single-host setup, and a
non-loopback listener logs a warning at start.
"""

from __future__ import annotations

import contextvars
import hmac
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

from parlons.services.common.context import TENANT_HEADER
from parlons.errors import InvalidArgument

GATEWAY_SECRET_HEADER = "x-parlons-gateway-secret"

# The tenant a call is made for, as far as this server can trust it ("" when unknown).
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")


def current_tenant() -> str:
    return tenant_var.get()


@dataclass(frozen=True)
class GatewayTrust:
    identities: frozenset[str] = frozenset()
    secret: str = ""
    require: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> GatewayTrust:
        """From ServerSettings; a configuration that cannot work is a start-up error."""
        identities = frozenset(i.strip() for i in settings.trusted_gateway_identities if i.strip())
        if identities and not settings.tls_client_ca:
            raise InvalidArgument(
                "[server] trusted_gateway_identities needs tls_client_ca (and tls_cert/tls_key): the "
                "gateway's identity is its client certificate, which only mutual TLS verifies")
        if settings.require_gateway and not (identities or settings.gateway_secret):
            raise InvalidArgument(
                "[server] require_gateway needs trusted_gateway_identities (mTLS) or gateway_secret")
        if settings.gateway_secret and len(settings.gateway_secret) < 16:
            raise InvalidArgument("[server] gateway_secret is shorter than 16 characters: use a random secret")
        return cls(identities, settings.gateway_secret, settings.require_gateway)

    @property
    def configured(self) -> bool:
        return bool(self.identities or self.secret)

    def is_gateway(self, metadata: Iterable[tuple[str, Any]], auth_context: dict[str, list[bytes]]) -> bool:
        if self.secret:
            given = next((str(v) for k, v in metadata if k == GATEWAY_SECRET_HEADER), "")
            if given and hmac.compare_digest(given.encode(), self.secret.encode()):
                return True
        if self.identities:
            names = [*auth_context.get("x509_common_name", []), *auth_context.get("x509_subject_alternative_name", [])]
            if any(name.decode(errors="replace") in self.identities for name in names):
                return True
        return False

    def tenant(self, metadata: Iterable[tuple[str, Any]], auth_context: dict[str, list[bytes]]) -> tuple[str, bool]:
        """(the tenant to honour, whether the caller is the gateway)."""
        pairs = list(metadata)
        header = next((str(v) for k, v in pairs if k == TENANT_HEADER), "")
        if not self.configured:
            return header, False
        gateway = self.is_gateway(pairs, auth_context)
        return (header if gateway else ""), gateway
