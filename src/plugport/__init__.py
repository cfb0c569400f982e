"""Plugport: sandboxed plugins for Python applications, and the marketplace to publish them.

The names below are the public API; everything else may change between releases.
"""

import importlib as _importlib
import logging as _logging
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from plugport._version import __version__
from plugport.errors import (
    ArchiveError,
    ArchiveLimitError,
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    ConsentError,
    InvalidInputError,
    MailDeliveryError,
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
    SecretBackendError,
    SignatureError,
    SwapRefusedError,
    TaskValidationError,
    TrustError,
    UnsafeArchiveError,
    WorkflowError,
)

if _TYPE_CHECKING:
    from plugport.archive import ArchiveLimits, safe_unpack
    from plugport.authoring import (
        ValidationReport,
        pack_plugin,
        read_archive_manifest,
        sign_archive,
        validate_path,
        verify_archive,
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
    "MailDeliveryError",
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
    "SecretBackendError",
    "SignatureError",
    "SwapRefusedError",
    "TaskValidationError",
    "TrustError",
    "UnsafeArchiveError",
    "ValidationReport",
    "VerifiedSignature",
    "WorkflowError",
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

# Imported on first use: the zygote, every worker and the pytest plugin import ``plugport`` and
# need none of these (pydantic, cryptography and the archive code cost hundreds of ms to load).
_LAZY = {
    "ArchiveFacts": "signing",
    "ArchiveLimits": "archive",
    "Manifest": "manifest",
    "ValidationReport": "authoring",
    "VerifiedSignature": "signing",
    "load_manifest": "manifest",
    "manifest_json_schema": "manifest",
    "pack_plugin": "authoring",
    "parse_manifest": "manifest",
    "read_archive_manifest": "authoring",
    "safe_unpack": "archive",
    "sign_archive": "authoring",
    "validate_path": "authoring",
    "verify_archive": "authoring",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plugport' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"plugport.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
