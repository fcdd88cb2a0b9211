"""Tenants: who may call the gateway, with which keys, quotas and glossaries.

Tenants live in a TOML file, or a directory of TOML files (one per tenant is what the
admin command writes), so an operator can keep them in configuration management. The
gateway re-reads them when a file changes (mtime, size and inode watched), so creating or
revoking a key needs no restart; a file that fails to parse keeps the previous tenants
and is logged.

API keys look like `prl_<id>_<secret>`: the id finds the key, the secret proves it. Only
the SHA-256 of the whole key is stored. Keys are 256-bit random strings, not passwords:
a salted slow hash (scrypt) protects low-entropy secrets against guessing, which no one
can do against 2^256 possibilities, and it would cost every request milliseconds. The
comparison is constant-time.

    [defaults.quotas]                       # for tenants without their own
    audio_seconds_per_minute = 600

    [tenants.prefecture-69]
    display_name = "Préfecture du Rhône"
    mtls_identities = ["desk-01.rhone.example"]   # client certificate CN or SAN
    quotas = { audio_seconds_per_minute = 1200, characters_per_minute = 200000, concurrent_streams = 4 }

    [[tenants.prefecture-69.keys]]
    id = "3f9c2a7be01d"
    sha256 = "…"
    created = "2025-03-01T10:00:00Z"
    revoked = false

    [tenants.prefecture-69.glossaries.accueil]
    entries = [{ source = "titre de séjour", target = "residence permit" },
               { source = "CAF", do_not_translate = true }]

    [tenants.prefecture-69.anonymization]   # added to every anonymisation of this tenant
    always_mask = ["Saint-Genis-les-Ollières"]   # a village where everyone is known
    never_mask = ["Jean Moulin"]                 # the prefecture's own street
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

import tomli_w

from parlons.private_files import replaced_privately
from parlons.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from parlons.v1 import translation_pb2

log = logging.getLogger("parlons.gateway.tenants")

KEY_PREFIX = "prl"
_KEY_RE = re.compile(r"^prl_([0-9a-f]{12})_([A-Za-z0-9_-]{32,})$")
# Live streams one tenant of a tenants file may hold at once unless its quotas (or the
# file's [defaults.quotas]) say otherwise; 0 there means unlimited. Without it one
# tenant could take every stream slot of the backends.
DEFAULT_TENANT_STREAMS = 4
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Quotas:
    """Per-tenant limits; 0 means unlimited."""

    audio_seconds_per_minute: float = 0.0
    characters_per_minute: int = 0
    concurrent_streams: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str, base: Quotas | None = None) -> Quotas:
        base = base or cls()
        known = {"audio_seconds_per_minute", "characters_per_minute", "concurrent_streams"}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgument(f"{where}: unknown quota(s) {', '.join(sorted(unknown))}")
        try:
            quotas = cls(
                audio_seconds_per_minute=float(data.get("audio_seconds_per_minute", base.audio_seconds_per_minute)),
                characters_per_minute=int(data.get("characters_per_minute", base.characters_per_minute)),
                concurrent_streams=int(data.get("concurrent_streams", base.concurrent_streams)),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"{where}: {exc}") from exc
        if min(quotas.audio_seconds_per_minute, quotas.characters_per_minute, quotas.concurrent_streams) < 0:
            raise InvalidArgument(f"{where}: quotas cannot be negative")
        return quotas


@dataclass(frozen=True)
class ApiKey:
    id: str
    sha256: str
    created: str = ""
    revoked: bool = False
    label: str = ""


@dataclass(frozen=True)
class Tenant:
    name: str
    display_name: str = ""
    enabled: bool = True
    keys: tuple[ApiKey, ...] = ()
    mtls_identities: tuple[str, ...] = ()
    quotas: Quotas = field(default_factory=Quotas)
    glossaries: Mapping[str, tuple[translation_pb2.GlossaryEntry, ...]] = field(default_factory=dict)
    # Terms this tenant always masks, and terms it never masks (anonymisation).
    always_mask: tuple[str, ...] = ()
    never_mask: tuple[str, ...] = ()

    def glossary(self, name: str) -> tuple[translation_pb2.GlossaryEntry, ...]:
        """A glossary of this tenant only; another tenant's of the same name is invisible."""
        entries = self.glossaries.get(name)
        if entries is None:
            raise NotFound(
                f"tenant {self.name!r} has no glossary named {name!r}"
                + (f"; it has: {', '.join(sorted(self.glossaries))}" if self.glossaries else "")
            )
        return entries


def anonymous_tenant() -> Tenant:
    """The caller when authentication is off (local embedded use)."""
    return Tenant(name=ANONYMOUS, display_name="local, no authentication")


# --------------------------------------------------------------------------- keys


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new API key and its id: `prl_<12 hex>_<43 url-safe chars>` (256 random bits)."""
    key_id = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}", key_id


def key_id_of(key: str) -> str | None:
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- parsing


def _glossary_entries(raw: Any, where: str) -> tuple[translation_pb2.GlossaryEntry, ...]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("entries", []), list):
        raise InvalidArgument(f"{where}: a glossary is a table with an `entries` list")
    entries = []
    for i, item in enumerate(raw.get("entries", [])):
        if not isinstance(item, Mapping) or not str(item.get("source", "")).strip():
            raise InvalidArgument(f"{where}: entry {i} needs a non-empty `source`")
        entry = translation_pb2.GlossaryEntry(
            source=str(item["source"]),
            target=str(item.get("target", "")),
            do_not_translate=bool(item.get("do_not_translate", False)),
            case_sensitive=bool(item.get("case_sensitive", False)),
        )
        if not entry.target and not entry.do_not_translate:
            raise InvalidArgument(f"{where}: entry {i} ({entry.source!r}) needs `target` or do_not_translate = true")
        entries.append(entry)
    return tuple(entries)


def _parse_tenant(name: str, raw: Any, defaults: Quotas, where: str) -> Tenant:
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"{where}: tenant name {name!r} must match {_NAME_RE.pattern}")
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{where}: [tenants.{name}] must be a table")
    keys = []
    for i, item in enumerate(raw.get("keys", [])):
        if not isinstance(item, Mapping) or not item.get("id") or not item.get("sha256"):
            raise InvalidArgument(f"{where}: tenants.{name}.keys[{i}] needs `id` and `sha256`")
        keys.append(ApiKey(
            id=str(item["id"]), sha256=str(item["sha256"]).lower(), created=str(item.get("created", "")),
            revoked=bool(item.get("revoked", False)), label=str(item.get("label", "")),
        ))
    glossaries = {
        str(g_name): _glossary_entries(g_raw, f"{where}: tenants.{name}.glossaries.{g_name}")
        for g_name, g_raw in dict(raw.get("glossaries", {})).items()
    }
    return Tenant(
        name=name,
        display_name=str(raw.get("display_name", "")),
        enabled=bool(raw.get("enabled", True)),
        keys=tuple(keys),
        mtls_identities=tuple(str(x) for x in raw.get("mtls_identities", [])),
        quotas=Quotas.from_mapping(raw.get("quotas", {}), f"{where}: tenants.{name}.quotas", defaults),
        glossaries=glossaries,
        **_anonymization_terms(raw.get("anonymization", {}), f"{where}: tenants.{name}.anonymization"),
    )


MAX_TERMS = 1000


def _anonymization_terms(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{where} must be a table with always_mask and/or never_mask lists")
    unknown = set(raw) - {"always_mask", "never_mask"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (always_mask, never_mask)")
    out = {}
    for key in ("always_mask", "never_mask"):
        terms = raw.get(key, [])
        if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
            raise InvalidArgument(f"{where}.{key} must be a list of non-empty strings")
        if len(terms) > MAX_TERMS or any(len(t) > 200 for t in terms):
            raise InvalidArgument(f"{where}.{key}: at most {MAX_TERMS} terms of 200 characters")
        out[key] = tuple(t.strip() for t in terms)
    return out


@dataclass(frozen=True)
class TenantSet:
    """An immutable snapshot of every tenant, indexed for authentication."""

    tenants: Mapping[str, Tenant]
    by_key_id: Mapping[str, tuple[Tenant, ApiKey]]
    by_identity: Mapping[str, Tenant]

    @classmethod
    def from_documents(cls, documents: Iterable[tuple[str, Mapping[str, Any]]]) -> TenantSet:
        docs = list(documents)
        defaults = Quotas(concurrent_streams=DEFAULT_TENANT_STREAMS)
        for where, doc in docs:
            unknown = set(doc) - {"tenants", "defaults"}
            if unknown:
                raise InvalidArgument(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}")
            if "defaults" in doc:
                defaults = Quotas.from_mapping(dict(doc["defaults"]).get("quotas", {}), f"{where}: defaults.quotas",
                                               defaults)
        tenants: dict[str, Tenant] = {}
        by_key: dict[str, tuple[Tenant, ApiKey]] = {}
        by_identity: dict[str, Tenant] = {}
        for where, doc in docs:
            for name, raw in dict(doc.get("tenants", {})).items():
                if name in tenants:
                    raise InvalidArgument(f"{where}: tenant {name!r} is defined twice")
                tenant = _parse_tenant(name, raw, defaults, where)
                tenants[name] = tenant
                for key in tenant.keys:
                    if key.id in by_key:
                        raise InvalidArgument(f"{where}: key id {key.id} is used twice")
                    by_key[key.id] = (tenant, key)
                for identity in tenant.mtls_identities:
                    if identity in by_identity:
                        raise InvalidArgument(f"{where}: mTLS identity {identity!r} belongs to two tenants")
                    by_identity[identity] = tenant
        return cls(tenants, by_key, by_identity)

    def authenticate_key(self, key: str) -> Tenant:
        key_id = key_id_of(key)
        found = self.by_key_id.get(key_id) if key_id else None
        if found is None:
            raise Unauthenticated("invalid API key")
        tenant, stored = found
        if not hmac.compare_digest(stored.sha256, hash_key(key)):
            raise Unauthenticated("invalid API key")
        if stored.revoked:
            raise Unauthenticated(f"API key {stored.id} has been revoked; ask for a new key")
        if not tenant.enabled:
            raise PermissionDenied(f"tenant {tenant.name!r} is disabled")
        return tenant

    def authenticate_identity(self, identities: Iterable[str]) -> Tenant | None:
        for identity in identities:
            tenant = self.by_identity.get(identity)
            if tenant is not None:
                if not tenant.enabled:
                    raise PermissionDenied(f"tenant {tenant.name!r} is disabled")
                return tenant
        return None


# --------------------------------------------------------------------------- files


def tenant_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.toml") if p.is_file())
    return [path] if path.exists() else []


def _signature(files: list[Path]) -> tuple[tuple[str, int, int, int], ...]:
    out = []
    for f in files:
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def read_documents(path: Path) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for f in tenant_files(path):
        try:
            docs.append((str(f), tomllib.loads(f.read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"cannot read tenants file {f}: {exc}") from exc
    return docs


class TenantRegistry:
    """The current tenants, re-read when their files change (checked at most every few s)."""

    def __init__(self, path: str | Path, reload_interval_s: float = 2.0) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InvalidArgument(
                f"tenants path {self.path} does not exist; create it with `parlons tenants create`"
            )
        self.reload_interval_s = reload_interval_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._signature = _signature(tenant_files(self.path))
        self._set = TenantSet.from_documents(read_documents(self.path))
        log.info("tenants loaded", extra={"fields": {"tenants": len(self._set.tenants)}})

    def current(self) -> TenantSet:
        now = time.monotonic()
        if now - self._checked < self.reload_interval_s:
            return self._set
        with self._lock:
            if now - self._checked < self.reload_interval_s:
                return self._set
            self._checked = now
            signature = _signature(tenant_files(self.path))
            if signature != self._signature:
                self._signature = signature
                try:
                    self._set = TenantSet.from_documents(read_documents(self.path))
                    log.info("tenants reloaded", extra={"fields": {"tenants": len(self._set.tenants)}})
                except InvalidArgument as exc:
                    log.error("tenants file invalid, keeping the previous tenants: %s", exc)
        return self._set

    def get(self, name: str) -> Tenant | None:
        return self.current().tenants.get(name)


# --------------------------------------------------------------------------- admin


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write then rename, so the gateway never reads half a file."""
    with replaced_privately(path) as handle:
        tomli_w.dump(document, handle)


class TenantStore:
    """Edits the tenants file(s) for `parlons tenants create|revoke|list`.

    A directory gets one `<tenant>.toml` per tenant; a file holds them all. Either way
    the result is what `TenantRegistry` reads, and it is validated before being written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _file_for(self, name: str) -> Path:
        if self.path.is_dir():
            existing = [f for f, doc in self._docs() if name in doc.get("tenants", {})]
            return Path(existing[0]) if existing else self.path / f"{name}.toml"
        return self.path

    def _docs(self) -> list[tuple[str, dict[str, Any]]]:
        return read_documents(self.path) if self.path.exists() else []

    def load(self) -> TenantSet:
        return TenantSet.from_documents(self._docs())

    def _edit(self, name: str, change: Any) -> None:
        target = self._file_for(name)
        docs = self._docs()
        document = next((doc for f, doc in docs if Path(f) == target), {})
        change(document)
        others = [(f, doc) for f, doc in docs if Path(f) != target]
        TenantSet.from_documents([*others, (str(target), document)])  # validate first
        _write_atomically(target, document)

    def create_key(
        self,
        name: str,
        *,
        display_name: str = "",
        label: str = "",
        quotas: Mapping[str, Any] | None = None,
        mtls_identities: Iterable[str] = (),
    ) -> tuple[str, str]:
        """Add a key (creating the tenant if new); returns (key, key id). Shown once."""
        if not _NAME_RE.match(name):
            raise InvalidArgument(f"tenant name {name!r} must match {_NAME_RE.pattern}")
        key, key_id = generate_key()

        def change(document: dict[str, Any]) -> None:
            tenant = document.setdefault("tenants", {}).setdefault(name, {})
            if display_name:
                tenant["display_name"] = display_name
            if quotas:
                tenant.setdefault("quotas", {}).update({k: v for k, v in quotas.items() if v is not None})
            identities = list(tenant.get("mtls_identities", []))
            identities += [i for i in mtls_identities if i not in identities]
            if identities:
                tenant["mtls_identities"] = identities
            entry = {"id": key_id, "sha256": hash_key(key), "created": _now(), "revoked": False}
            if label:
                entry["label"] = label
            tenant.setdefault("keys", []).append(entry)

        self._edit(name, change)
        return key, key_id

    def revoke(self, name: str, key_id: str | None = None) -> list[str]:
        """Revoke one key, or every key of the tenant and disable it. Returns the key ids."""
        current = self.load().tenants.get(name)
        if current is None:
            raise NotFound(f"no tenant named {name!r} in {self.path}")
        if key_id is not None and key_id not in {k.id for k in current.keys}:
            raise NotFound(f"tenant {name!r} has no key {key_id!r}")
        revoked: list[str] = []

        def change(document: dict[str, Any]) -> None:
            tenant = document["tenants"][name]
            for entry in tenant.get("keys", []):
                if key_id is None or entry["id"] == key_id:
                    if not entry.get("revoked"):
                        revoked.append(entry["id"])
                    entry["revoked"] = True
                    entry["revoked_at"] = entry.get("revoked_at", _now())
            if key_id is None:
                tenant["enabled"] = False

        self._edit(name, change)
        return revoked
