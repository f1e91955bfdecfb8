"""The public API for backend authors: everything a storage backend needs, from one module.

A backend (built in, or in its own distribution registered under the ``cosi_driver.backends``
entry point group) imports from here and nowhere else in ``cosi_driver``::

    from cosi_driver.sdk import BackendType, BucketParams, InvalidArgument, setting, STRING

Two words for what users edit, and one declaration mechanism for each:

* **settings** are what the operator edits once per installation: a backend's ``config:`` block
  in the backends file (or its ``COSI_DRIVER_BACKEND_<SETTING>`` variables). A backend declares
  them as a frozen dataclass whose fields are made with :func:`setting` and a :class:`SettingKind`
  (``STRING``, ``PATH``, ``SECRET``, :func:`integer`, ...). The driver's own process settings
  (``COSI_DRIVER_*`` variables and ``serve`` flags) use the same kinds.
* **parameters** are what a cluster user edits per class: BucketClass and BucketAccessClass
  keys, strings on the wire. A backend declares them as a frozen dataclass deriving from
  :class:`BucketParams` / :class:`AccessParams` whose fields are made with :func:`param` and a
  :class:`ParamKind`. The core parses them before the backend is called.

Both declarations also produce the documentation tables (``cosi-driver docs``). They are one
mechanism underneath: ``SettingKind`` and ``ParamKind`` name the same class, so any kind suits a
setting or a parameter (a ``QUANTITY`` setting, a ``seconds()`` parameter), and one parser checks
both, as it checks the driver's own process settings.

Public. Stability: the names in ``__all__`` are the supported surface. They keep their meaning within a
minor release; a removal or an incompatible change is announced in the changelog one minor
release ahead. Anything imported from ``cosi_driver.core.*`` or other modules directly is internal
machinery and may change in any release.
"""

from __future__ import annotations

from cosi_driver.core.backend import (
    AccessedBucket,
    Backend,
    BackendContext,
    BackendType,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    NamesAccounts,
    RevokeAccess,
)
from cosi_driver.core.credentials import CredentialKit, KeyPair
from cosi_driver.core.errors import (
    AlreadyExists,
    BucketNotEmpty,
    CosiError,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)
from cosi_driver.core.files import atomic_write_json, ensure_private_dir, read_json, remove_file
from cosi_driver.core.options import (
    BOOLEAN,
    PATH,
    SECRET,
    STRING,
    ConfigProblem,
    SecretRef,
    integer,
    one_of,
    seconds,
    url,
)
from cosi_driver.core.options import OptionKind as SettingKind
from cosi_driver.core.options import option as setting
from cosi_driver.core.params import (
    BOOL,
    COUNT,
    QUANTITY,
    AccessParams,
    BucketParams,
    DeletionPolicy,
    Quota,
    Versioning,
    choice,
    param,
)
from cosi_driver.core.params import Kind as ParamKind
from cosi_driver.core.secret import Secret
from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import (
    AccessMode,
    AddressingStyle,
    AuthenticationType,
    AzureBucketInfo,
    AzureCredentials,
    BucketInfo,
    Credentials,
    ObjectProtocol,
    S3BucketInfo,
    S3Credentials,
)
from cosi_driver.core.values import ValueProblem

__all__ = [  # noqa: RUF022 -- grouped by purpose, as an author reads it
    # The contract: what a backend implements and what it is given.
    "Backend",
    "BackendContext",
    "BackendType",
    "CreateBucket",
    "DeleteBucket",
    "FoundBucket",
    "GrantAccess",
    "AccessedBucket",
    "NamesAccounts",
    "Granted",
    "RevokeAccess",
    "ObjectProtocol",
    "BucketInfo",
    "S3BucketInfo",
    "AzureBucketInfo",
    "Credentials",
    "S3Credentials",
    "AzureCredentials",
    "AuthenticationType",
    "AddressingStyle",
    # Errors: raise these at the backend's edge; each names its gRPC code.
    "CosiError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "BucketNotEmpty",
    "PermissionDenied",
    "OutOfRange",
    "ResourceExhausted",
    "Unimplemented",
    "Unavailable",
    "DeadlineExceeded",
    "Internal",
    # Settings: the operator's config: block.
    "setting",
    "SettingKind",
    "STRING",
    "BOOLEAN",
    "PATH",
    "SECRET",
    "integer",
    "seconds",
    "one_of",
    "url",
    "SecretRef",
    "ConfigProblem",
    "ValueProblem",
    # Parameters: BucketClass / BucketAccessClass keys.
    "param",
    "ParamKind",
    "BOOL",
    "COUNT",
    "QUANTITY",
    "choice",
    "BucketParams",
    "AccessParams",
    "Versioning",
    "Quota",
    "AccessMode",
    "DeletionPolicy",
    # Credentials and state.
    "CredentialKit",
    "KeyPair",
    "Secret",
    "StateStore",
    "atomic_write_json",
    "read_json",
    "ensure_private_dir",
    "remove_file",
]
