"""The gateway as the shared server sees it: GatewayService, pass-through, REST facade.

Two ways to run it:

* `parlons serve` (embedded default): the gateway holds the public port and the other
  services of the process run on a private Unix socket (a 0700 temporary directory) that
  only the gateway calls. Every public call thus goes through the gateway's
  authentication and quotas, and the gateway's code path is the same as in a split
  deployment. The cost is one serialisation over a local socket, ~1 ms for a minute of
  audio (measured in benchmarks/bench_gateway.py), against seconds of model time. Calling
  the servicers' Python methods directly would save that millisecond but bypass their
  error mapping, deadlines and cancellation, which gRPC gives for free.
* `parlons serve gateway` (split): backends are the addresses in [gateway].
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
from pathlib import Path
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from parlons.services.common.audio_request import audio_bytes, read_upload
from parlons.services.common.config import GatewaySettings, ParlonsConfig, ServerSettings
from parlons.errors import InvalidArgument
from parlons.services.common.interceptors import ServiceInterceptor, stream_bounds
from parlons.services.common.server import RunningServer, ServiceModule, channel_options
from parlons.services.common.streams import read_config
from parlons.hosts import is_loopback
from parlons.services.gateway.auth import Authenticator, GatewayAdmission, resolve_mode
from parlons.services.gateway.quota_store import RedisStore
from parlons.services.gateway.core import Call, GatewayCore
from parlons.services.gateway.live import LiveConversation
from parlons.services.gateway.proxy import SERVICE_DESCRIPTORS, Proxy
from parlons.services.gateway.quotas import QuotaManager
from parlons.services.gateway.routing import SERVICE_NAMES, Backend, BackendTls, CallOptions, Router, channel_target
from parlons.services.gateway.tenants import TenantRegistry
from parlons.v1 import gateway_pb2, gateway_pb2_grpc

if TYPE_CHECKING:  # imported when REST is enabled (aiohttp), see start()
    from parlons.services.gateway.rest import RestFacade

log = logging.getLogger("parlons.gateway")

SERVICE_NAME = "parlons.v1.GatewayService"
_NAME_OF_SERVICE = {v: k for k, v in SERVICE_NAMES.items()}


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, module: GatewayModule) -> None:
        self._module = module

    def _call(self, context: aio.ServicerContext) -> Call:
        tenant = self._module.auth.from_grpc(context)
        return Call(tenant, CallOptions.from_context(context, tenant.name, self._module.settings.backend_timeout_s))

    async def TranscribeConversation(
        self, request: gateway_pb2.TranscribeConversationRequest, context: aio.ServicerContext
    ) -> gateway_pb2.TranscribeConversationResponse:
        call = self._call(context)
        data = audio_bytes(request.audio if request.HasField("audio") else None)
        return await self._module.core.transcribe_conversation(call, request, data)

    async def TranscribeConversationUpload(
        self,
        request_iterator: AsyncIterator[gateway_pb2.TranscribeConversationUploadRequest],
        context: aio.ServicerContext,
    ) -> gateway_pb2.TranscribeConversationResponse:
        call = self._call(context)
        await self._module.quotas.check_audio(call.tenant)  # before any audio is held
        config, data = await read_upload(request_iterator, self._module.max_upload_bytes)
        if config.HasField("audio") and config.audio.WhichOneof("source"):
            raise InvalidArgument("an upload's config carries no audio: send it in the audio_content chunks")
        if not data:
            raise InvalidArgument("no audio: send the file in audio_content chunks after the config")
        return await self._module.core.transcribe_conversation(call, config, data)

    async def TranslateSpeech(
        self, request: gateway_pb2.TranslateSpeechRequest, context: aio.ServicerContext
    ) -> gateway_pb2.TranslateSpeechResponse:
        call = self._call(context)
        data = audio_bytes(request.audio if request.HasField("audio") else None)
        return await self._module.core.translate_speech(call, request, data)

    async def LiveConversation(
        self,
        request_iterator: AsyncIterator[gateway_pb2.LiveConversationRequest],
        context: aio.ServicerContext,
    ) -> AsyncIterator[gateway_pb2.LiveConversationResponse]:
        call = self._call(context)
        session = LiveConversation(self._module.core, call, await read_config(request_iterator))
        async with self._module.core.quotas.stream(call.tenant):
            async for response in session.run(request_iterator):
                yield response


class GatewayModule:
    """Register, load, close: the gateway in the shared server runtime."""

    # It authenticates its callers itself (API keys, mTLS identities): the server's
    # gateway-trust warning does not concern it.
    authenticates_tenants = True

    def __init__(self, config: ParlonsConfig, local_modules: Sequence[ServiceModule] = ()) -> None:
        self.config = config
        self.settings: GatewaySettings = config.gateway
        self.local_modules = list(local_modules)
        self.max_upload_bytes = self.settings.max_upload_mb * 1024 * 1024
        local_names = {_NAME_OF_SERVICE[n] for m in self.local_modules for n in m.service_names if n in _NAME_OF_SERVICE}
        self.remote: dict[str, list[str]] = {
            name: list(getattr(self.settings, name)) for name in SERVICE_NAMES if getattr(self.settings, name)
        }
        overlap = local_names & set(self.remote)
        if overlap:
            raise InvalidArgument(
                f"{', '.join(sorted(overlap))}: runs in this process and has [gateway] addresses too; "
                "choose one"
            )
        self.backend_names = sorted(local_names | set(self.remote))
        self.service_names = (SERVICE_NAME, *(SERVICE_NAMES[n] for n in self.backend_names))
        hosts = [config.server.host]
        if self.settings.rest_enabled:
            hosts.append(self.settings.rest_host or config.server.host)
        mode = resolve_mode(self.settings.auth, self.settings.tenants_path, hosts)
        registry = (
            TenantRegistry(self.settings.tenants_path, self.settings.tenants_reload_s)
            if self.settings.tenants_path
            else None
        )
        if mode == "none" and not all(is_loopback(h) for h in hosts):
            log.warning("gateway authentication is OFF on a non-loopback listener (auth = \"none\")")
        plaintext = not (config.server.tls_cert and config.server.tls_key)
        if mode == "api_key" and plaintext and not is_loopback(config.server.host):
            log.warning("API keys are accepted over plaintext on %s: anyone on the network path can read "
                        "them; set [server] tls_cert/tls_key (or end TLS in front of the gateway)",
                        config.server.host)
        self.auth = Authenticator(mode, registry)
        store = None
        if self.settings.quota_redis_url:
            store = RedisStore(self.settings.quota_redis_url, failure=self.settings.quota_redis_failure,
                               timeout_s=self.settings.quota_redis_timeout_s)
        self.quotas = QuotaManager(store)
        # Keys and quota debt checked on the metadata, before grpc reads a request (the
        # server's interceptor calls it); the handlers check again and read certificates.
        self.admission = GatewayAdmission(self.auth, self.quotas,
                                          client_certificates=bool(config.server.tls_client_ca))
        self.router = Router({}, ready=False)
        self.core = GatewayCore(self.router, self.quotas, max_message_mb=config.server.max_message_mb,
                                max_target_languages=self.settings.max_target_languages,
                                max_glossary_entries=self.settings.max_request_glossary_entries)
        self.proxy = Proxy(
            self.core, self.auth,
            default_timeout_s=self.settings.backend_timeout_s, max_upload_bytes=self.max_upload_bytes,
        )
        self._internal: RunningServer | None = None
        self._socket_dir: str | None = None
        self.rest: RestFacade | None = None
        self._servicer = GatewayServicer(self)

    def register(self, server: aio.Server) -> None:
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(self._servicer, server)
        server.add_generic_rpc_handlers(tuple(self.proxy.handler(name) for name in self.backend_names))

    async def load(self) -> None:
        backends: dict[str, Backend] = {}
        tls = BackendTls(self.settings.backend_ca, self.settings.backend_cert, self.settings.backend_key,
                         self.settings.backend_secret)
        local_target = await self._start_internal() if self.local_modules else None
        for name in self.backend_names:
            if name in self.remote:
                target, backend_tls = channel_target(self.remote[name]), tls
            else:
                assert local_target is not None
                target, backend_tls = local_target, None
            backends[name] = Backend(
                name, target, tls=backend_tls, attempts=self.settings.backend_attempts,
                max_message_mb=self.config.server.max_message_mb,
            )
            log.info("backend", extra={"fields": {"service": name, "target": target}})
        self.router.backends.update(backends)
        self.router.ready = True
        if self.settings.rest_enabled:
            from parlons.services.gateway.rest import RestFacade

            rest = self.rest = RestFacade(self.core, self.auth, self.settings)
            await rest.start(
                self.settings.rest_host or self.config.server.host,
                self.settings.rest_port,
                ssl_context=_rest_ssl_context(self.config.server),
            )

    async def _start_internal(self) -> str:
        """The in-process services on a private Unix socket (see module docstring)."""
        self._socket_dir = tempfile.mkdtemp(prefix="parlons-")
        address = f"unix:{Path(self._socket_dir) / 'backends.sock'}"
        server = aio.server(
            interceptors=[ServiceInterceptor(stream_bounds(self.config.server))],
            options=channel_options(self.config.server.max_message_mb) + [("grpc.max_concurrent_streams", 256)],
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [n for m in self.local_modules for n in m.service_names]
        for module in self.local_modules:
            module.register(server)
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if server.add_insecure_port(address) == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        settings = ServerSettings(host=address, port=0, grace_s=self.config.server.grace_s)
        self._internal = RunningServer(server, 0, health_servicer, self.local_modules, settings)
        await self._internal.load_models()
        return address

    async def close(self) -> None:
        if self.rest is not None:
            await self.rest.stop()
        await self.router.close()
        await self.quotas.close()
        if self._internal is not None:
            await self._internal.stop(self.config.server.grace_s)
            self._internal = None
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    @property
    def rest_port(self) -> int | None:
        return self.rest.port if self.rest is not None else None


def _rest_ssl_context(server: ServerSettings) -> ssl.SSLContext | None:
    """The REST facade uses the gRPC listener's certificate (and client CA for mTLS)."""
    if not server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.tls_cert, server.tls_key)
    if server.tls_client_ca:
        context.load_verify_locations(server.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def module_from_config(config: ParlonsConfig, local_modules: Sequence[ServiceModule] = ()) -> GatewayModule:
    return GatewayModule(config, local_modules)


__all__ = ["GatewayModule", "GatewayServicer", "SERVICE_DESCRIPTORS", "module_from_config"]
