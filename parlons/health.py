"""`parlons health`: ask a server's gRPC health service, for probes and operators.

Kubernetes' built-in gRPC probe speaks plaintext only; a backend that requires mutual TLS
(it trusts only the gateway) is probed with this command, presenting a certificate.
Exit 0 when SERVING, 1 otherwise (NOT_SERVING, unreachable, refused).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_health_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("health", help="check a server's health (exit 0 when serving)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--service", default="", help="e.g. parlons.v1.TranscriptionService (default: the server)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS, system roots (implied by --ca)")
    parser.add_argument("--ca", help="CA certificate (PEM): connect with TLS")
    parser.add_argument("--cert", help="client certificate (PEM), for servers that require one")
    parser.add_argument("--key", help="its key (PEM)")
    parser.add_argument("--server-name", help="name to verify in the server's certificate (default: the address)")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.set_defaults(func=run_health)


def run_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
    if args.ca or args.tls:
        credentials = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
        options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
        channel = grpc.secure_channel(args.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"{args.address}: {exc.code().name} {exc.details() or ''}".strip(), file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
