"""The model catalog: `catalog.toml` parsed into typed, validated entries.

Why a separate module: the catalog is data that several tools read (the manager, the
CLI, the services' ListModels), and a typo in it must fail loudly at load time with the
entry and field named, not as a KeyError in the middle of a pull.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

KINDS = (
    "whisper",
    "diarization-segmentation",
    "speaker-embedding",
    "plda",
    "diarization-pipeline",
    "translation",
    "ner",
)
CONVERTERS = ("ctranslate2",)
DEFAULT_CATALOG = Path(__file__).with_name("catalog.toml")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class FileSpec:
    """One file of an installed model, and where a source finds its bytes.

    `name` is the path inside the installed model directory. `path` is where the source
    holds it (a wheel member, a repo file, a file of a local directory), `name` when
    omitted; `parts` are concatenated in order instead. An empty `sha256` is pinned on
    first pull (trust on first use).
    """

    name: str
    sha256: str = ""
    size: int | None = None
    path: str | None = None
    parts: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return bool(self.sha256)

    @property
    def source_path(self) -> str:
        return self.path or self.name


@dataclass(frozen=True)
class PackageRef:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class PackageSource:
    """Wheels on the configured package index that carry the model files."""

    packages: tuple[PackageRef, ...]
    files: tuple[FileSpec, ...]
    python_version: str | None = None
    platform: str | None = None
    type: str = "package"

    def describe(self) -> str:
        return "package " + " + ".join(str(p) for p in self.packages)


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face repo at a revision, optionally converted to CTranslate2."""

    repo: str
    revision: str
    files: tuple[FileSpec, ...]
    allow_patterns: tuple[str, ...] = ()
    convert: str | None = None
    quantization: str | None = None
    copy_files: tuple[str, ...] = ()
    gated: bool = False
    type: str = "huggingface"

    def describe(self) -> str:
        text = f"huggingface {self.repo}@{self.revision[:12]}"
        if self.convert:
            text += f" (converted to {self.convert}"
            text += f", {self.quantization})" if self.quantization else ")"
        return text

    def patterns(self) -> list[str]:
        """What to download: the given patterns, else exactly the listed files."""
        if self.allow_patterns:
            return list(self.allow_patterns)
        paths: list[str] = []
        for spec in self.files:
            paths.extend(spec.parts or (spec.source_path,))
        return paths


@dataclass(frozen=True)
class LocalSource:
    """A directory on this machine (a mirror, a volume, a pre-converted model).

    With no `files`, the directory must hold the layout of one of the entry's other
    sources and is checked against that source's digests. With `convert`, the directory
    is a Hugging Face checkpoint (e.g. a downloaded Marian model) converted at pull time.
    """

    path: str
    files: tuple[FileSpec, ...] = ()
    convert: str | None = None
    quantization: str | None = None
    copy_files: tuple[str, ...] = ()
    type: str = "local"

    def describe(self) -> str:
        text = f"local {self.path}"
        if self.convert:
            text += f" (converted to {self.convert}"
            text += f", {self.quantization})" if self.quantization else ")"
        return text


Source = PackageSource | HubSource | LocalSource


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    languages: tuple[str, ...]
    size: str
    licence: str
    description: str
    sources: tuple[Source, ...]
    non_commercial: bool = False
    aliases: tuple[str, ...] = ()
    source_languages: tuple[str, ...] = ()
    target_languages: tuple[str, ...] = ()

    def known_digests(self, file_name: str) -> set[str]:
        """Every pinned sha256 that any source gives for `file_name`."""
        return {
            spec.sha256
            for source in self.sources
            for spec in source.files
            if spec.name == file_name and spec.pinned
        }


@dataclass(frozen=True)
class Catalog:
    entries: tuple[ModelEntry, ...]
    path: Path
    _index: dict[str, ModelEntry] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            for key in (entry.name, *entry.aliases):
                if key in self._index:
                    raise CatalogError(f"{self.path}: duplicate model name or alias {key!r}")
                self._index[key] = entry

    def get(self, name: str) -> ModelEntry | None:
        """The entry for a name or alias (case-insensitive), or None."""
        return self._index.get(name) or self._index.get(name.lower())

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


# ----------------------------------------------------------------------------- loading


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Parse and validate a catalog file (the packaged `catalog.toml` by default)."""
    catalog_path = Path(path) if path is not None else DEFAULT_CATALOG
    try:
        data = tomllib.loads(catalog_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"model catalog not found: {catalog_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{catalog_path}: invalid TOML: {exc}") from exc
    if data.get("schema") != 1:
        raise CatalogError(f"{catalog_path}: unsupported schema {data.get('schema')!r} (expected 1)")
    mirrors = _str_list(data, "local_mirrors", str(catalog_path))
    raw_models = data.get("model", [])
    if not isinstance(raw_models, list) or not raw_models:
        raise CatalogError(f"{catalog_path}: no [[model]] entries")
    entries = tuple(_parse_entry(raw, mirrors, catalog_path) for raw in raw_models)
    return Catalog(entries=entries, path=catalog_path)


def _parse_entry(raw: dict[str, Any], mirrors: list[str], catalog_path: Path) -> ModelEntry:
    name = raw.get("name")
    where = f"{catalog_path}: model {name!r}"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise CatalogError(f"{where}: name must match {_NAME_RE.pattern}")
    kind = _req_str(raw, "kind", where)
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    languages = tuple(_str_list(raw, "languages", where))
    if not languages:
        raise CatalogError(f"{where}: languages must list at least one code (or '*')")
    raw_sources = raw.get("source", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise CatalogError(f"{where}: needs at least one [[model.source]]")
    sources: list[Source] = [
        LocalSource(path=pattern.replace("{name}", name)) for pattern in mirrors
    ]
    for index, raw_source in enumerate(raw_sources, start=1):
        sources.append(_parse_source(raw_source, f"{where}: source {index}"))
    if all(isinstance(s, LocalSource) and not s.files for s in sources):
        raise CatalogError(f"{where}: needs a source that lists its files")
    aliases = tuple(_str_list(raw, "aliases", where))
    for alias in aliases:
        if not _NAME_RE.match(alias):
            raise CatalogError(f"{where}: alias {alias!r} must match {_NAME_RE.pattern}")
    non_commercial = raw.get("non_commercial", False)
    if not isinstance(non_commercial, bool):
        raise CatalogError(f"{where}: non_commercial must be true or false")
    return ModelEntry(
        name=name,
        kind=kind,
        languages=languages,
        size=_req_str(raw, "size", where),
        licence=_req_str(raw, "licence", where),
        description=_req_str(raw, "description", where),
        sources=tuple(sources),
        non_commercial=non_commercial,
        aliases=aliases,
        source_languages=tuple(_str_list(raw, "source_languages", where)),
        target_languages=tuple(_str_list(raw, "target_languages", where)),
    )


def _parse_source(raw: dict[str, Any], where: str) -> Source:
    kind = raw.get("type")
    if kind == "package":
        packages = raw.get("packages")
        if not isinstance(packages, list) or not packages:
            raise CatalogError(f"{where}: a package source needs packages = [{{name, version}}]")
        refs = []
        for item in packages:
            if not isinstance(item, dict):
                raise CatalogError(f"{where}: each package is {{ name = ..., version = ... }}")
            refs.append(PackageRef(_req_str(item, "name", where), _req_str(item, "version", where)))
        return PackageSource(
            packages=tuple(refs),
            files=_parse_files(raw, where, required=True),
            python_version=_opt_str(raw, "python_version", where),
            platform=_opt_str(raw, "platform", where),
        )
    convert = _opt_str(raw, "convert", where)
    if convert is not None and convert not in CONVERTERS:
        raise CatalogError(f"{where}: convert must be one of {', '.join(CONVERTERS)}")
    if kind == "huggingface":
        allow = tuple(_str_list(raw, "allow_patterns", where))
        if convert and not allow:
            raise CatalogError(f"{where}: a converted source needs allow_patterns (the inputs)")
        gated = raw.get("gated", False)
        if not isinstance(gated, bool):
            raise CatalogError(f"{where}: gated must be true or false")
        return HubSource(
            repo=_req_str(raw, "repo", where),
            revision=_req_str(raw, "revision", where),
            files=_parse_files(raw, where, required=True),
            allow_patterns=allow,
            convert=convert,
            quantization=_opt_str(raw, "quantization", where),
            copy_files=tuple(_str_list(raw, "copy_files", where)),
            gated=gated,
        )
    if kind == "local":
        return LocalSource(
            path=_req_str(raw, "path", where),
            files=_parse_files(raw, where, required=convert is not None),
            convert=convert,
            quantization=_opt_str(raw, "quantization", where),
            copy_files=tuple(_str_list(raw, "copy_files", where)),
        )
    raise CatalogError(f"{where}: type must be package, huggingface or local (got {kind!r})")


def _parse_files(raw: dict[str, Any], where: str, *, required: bool) -> tuple[FileSpec, ...]:
    items = raw.get("files", [])
    if not isinstance(items, list) or (required and not items):
        raise CatalogError(f"{where}: files must list every file of the model")
    specs: list[FileSpec] = []
    for item in items:
        if not isinstance(item, dict):
            raise CatalogError(f"{where}: each file is {{ name = ..., sha256 = ... }}")
        name = _req_str(item, "name", where)
        _check_relative(name, f"{where}: file {name!r}")
        sha = item.get("sha256", "")
        if not isinstance(sha, str) or (sha and not _SHA_RE.match(sha)):
            raise CatalogError(f"{where}: file {name!r}: sha256 must be 64 lowercase hex or empty")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise CatalogError(f"{where}: file {name!r}: size must be a byte count")
        parts = tuple(_str_list(item, "parts", where))
        path = _opt_str(item, "path", where)
        if parts and path:
            raise CatalogError(f"{where}: file {name!r}: give path or parts, not both")
        specs.append(FileSpec(name=name, sha256=sha, size=size, path=path, parts=parts))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise CatalogError(f"{where}: a file name appears twice")
    return tuple(specs)


def _check_relative(name: str, where: str) -> None:
    """File names are joined onto the cache directory: keep them inside it."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or name.startswith("."):
        raise CatalogError(f"{where}: must be a relative path inside the model directory")


def _req_str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: {key} is required (a non-empty string)")
    return value


def _opt_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: {key} must be a non-empty string")
    return value


def _str_list(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"{where}: {key} must be a list of strings")
    return list(value)
