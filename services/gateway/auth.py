"""Who is calling: an API key in metadata/headers, or a client certificate (mTLS).

Checked before the request body is read, so a call without a valid key costs nothing but
this lookup: gRPC in the server interceptor (`GatewayAdmission`, on the metadata), REST
in each handler before it reads the form. The handlers check again (and read the
client certificate, which the metadata does not carry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast

from grpc import aio

from parlons.hosts import is_loopback
from parlons.errors import InvalidArgument, Unauthenticated
from parlons.services.gateway.tenants import ANONYMOUS, Tenant, TenantRegistry, anonymous_tenant

if TYPE_CHECKING:
    from parlons.services.gateway.quotas import QuotaManager

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
        if name not in ("authorization", "x-api-key"):
            continue  # other values (binary "-bin" ones among them) are not decoded
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
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


# The RPCs charged in audio seconds or in characters (proxy.py, core.py): a tenant in
# debt is refused them before its request is read.
AUDIO_METHODS = frozenset({
    "Transcribe", "TranscribeUpload", "StreamingTranscribe", "Diarize", "DiarizeUpload",
    "TranscribeConversation", "TranscribeConversationUpload", "TranslateSpeech", "LiveConversation",
})
CHARACTER_METHODS = frozenset({
    "TranslateText", "StreamingTranslate", "TranslateDocument", "AnonymizeText", "AnonymizeDocument",
})


class GatewayAdmission:
    """Authentication and quota debt on a gRPC call's metadata, before its body is read.

    grpc.aio receives and parses a unary request whole before any handler runs: checked
    there, 8 unauthenticated 60 MB calls held +927 MB on the gateway. This runs in the
    server interceptor instead (`interceptors.Admission`). A caller without a key is
    refused here unless the listener verifies client certificates (mTLS), whose tenant
    the handler finds from the certificate. A tenant in debt is refused a unary call
    here; a streamed request is read only once its handler has checked the debt.
    """

    def __init__(self, auth: Authenticator, quotas: QuotaManager, *, client_certificates: bool) -> None:
        self.auth = auth
        self.quotas = quotas
        self.client_certificates = client_certificates

    async def admit(self, method: str, metadata: tuple[tuple[str, str | bytes], ...],
                    request_streaming: bool) -> None:
        if self.auth.mode == "none":
            return
        key = _key_from_pairs(metadata)
        if key is None and self.client_certificates:
            return  # the handler authenticates the certificate
        tenant = self.auth.from_key(key)
        if request_streaming:
            return
        name = method.rpartition("/")[2]
        if name in AUDIO_METHODS:
            await self.quotas.check_audio(tenant)
        elif name in CHARACTER_METHODS:
            await self.quotas.check_characters(tenant)


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
