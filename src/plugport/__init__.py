"""Plugport: sandboxed plugins for Python applications, and the marketplace to publish them.

The names below are the public API; everything else may change between releases.
"""

import logging as _logging

from plugport._version import __version__
from plugport.archive import ArchiveLimits, safe_unpack
from plugport.authoring import (
    ValidationReport,
    pack_plugin,
    read_archive_manifest,
    sign_archive,
    validate_path,
    verify_archive,
)
from plugport.errors import (
    ArchiveError,
    ArchiveLimitError,
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    ConsentError,
    InvalidInputError,
    ManifestError,
    NetworkFetchError,
    NotFoundError,
    OfflineError,
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    PluginQuarantinedError,
    PluginRuntimeError,
    PluginValidationError,
    PlugportError,
    Problem,
    RegistryResponseError,
    ResolutionError,
    ResourceLimitExceededError,
    SandboxUnavailableError,
    SignatureError,
    TrustError,
    UnsafeArchiveError,
)
from plugport.manifest import Manifest, load_manifest, manifest_json_schema, parse_manifest
from plugport.signing import ArchiveFacts, VerifiedSignature

# A library configures no logging; the application decides where records go.
_logging.getLogger("plugport").addHandler(_logging.NullHandler())

__all__ = [
    "ArchiveError",
    "ArchiveFacts",
    "ArchiveLimitError",
    "ArchiveLimits",
    "AuthenticationError",
    "AuthorizationError",
    "ConflictError",
    "ConsentError",
    "InvalidInputError",
    "Manifest",
    "ManifestError",
    "NetworkFetchError",
    "NotFoundError",
    "OfflineError",
    "PermissionDeniedError",
    "PluginCallError",
    "PluginCrashedError",
    "PluginQuarantinedError",
    "PluginRuntimeError",
    "PluginValidationError",
    "PlugportError",
    "Problem",
    "RegistryResponseError",
    "ResolutionError",
    "ResourceLimitExceededError",
    "SandboxUnavailableError",
    "SignatureError",
    "TrustError",
    "UnsafeArchiveError",
    "ValidationReport",
    "VerifiedSignature",
    "__version__",
    "load_manifest",
    "manifest_json_schema",
    "pack_plugin",
    "parse_manifest",
    "read_archive_manifest",
    "safe_unpack",
    "sign_archive",
    "validate_path",
    "verify_archive",
]
