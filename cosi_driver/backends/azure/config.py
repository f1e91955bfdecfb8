"""The ``azure-blob`` settings, and the account they describe.

Either an account name and key or a connection string (which holds both and the endpoint); the
secret is given by reference like every backend's and read again on use, so a rotated key needs
no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cosi_driver.backends.s3kit import endpoints
from cosi_driver.sdk import SECRET, STRING, ConfigProblem, Secret, SecretRef, seconds, setting

#: The newest x-ms-version Azurite 3.37.0 accepts with its version check on (the SDK's own default
#: is newer). Pinned so a driver upgrade never changes the API the storage is spoken to in.
API_VERSION = "2025-11-05"
#: One year: long enough that workloads do not see the token lapse in normal operation.
DEFAULT_SAS_LIFETIME = 365 * 24 * 3600.0


@dataclass(frozen=True)
class AzureConfig:
    account_name: str | None = setting(
        STRING, default=None, doc="Storage account name; default: AccountName of connection_string."
    )
    account_key: SecretRef | None = setting(
        SECRET, default=None, doc="Storage account key (either key of the account); or give connection_string."
    )
    connection_string: SecretRef | None = setting(
        SECRET,
        default=None,
        doc="Connection string with AccountName, AccountKey and optionally BlobEndpoint; instead of account_key.",
    )
    endpoint: str | None = setting(
        endpoints.ENDPOINT_URL,
        default=None,
        doc="Blob service URL; default: BlobEndpoint of the connection string, else https://<account>.blob.core.windows.net.",
    )
    public_endpoint: str | None = setting(**endpoints.public_endpoint("endpoint"))
    api_version: str = setting(
        STRING,
        default=API_VERSION,
        doc="x-ms-version the driver sends (pinned: Azurite and older Azure Stack refuse versions they do not know).",
    )
    sas_lifetime: float = setting(
        seconds(60.0),
        default=DEFAULT_SAS_LIFETIME,
        doc="Seconds a granted SAS stays valid (the expiry of its stored access policy; returned as expiryTs).",
    )
    verify_tls: bool = setting(**endpoints.VERIFY_TLS)
    ca_bundle: Path | None = setting(**endpoints.CA_BUNDLE)
    connect_timeout: float = setting(**endpoints.CONNECT_TIMEOUT)
    read_timeout: float = setting(**endpoints.READ_TIMEOUT)


@dataclass(frozen=True)
class Account:
    name: str
    key: Secret
    endpoint: str
    public_endpoint: str


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=value;Key=value`` pairs; values may contain ``=`` (base64 keys end in it)."""
    pairs = (part.split("=", 1) for part in text.split(";") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def resolve_account(config: AzureConfig, where: str) -> Account:
    """The account the settings describe; ConfigProblem naming the setting when they do not."""
    if (config.account_key is None) == (config.connection_string is None):
        raise ConfigProblem(where, "give exactly one of account_key and connection_string", "set one, not both")
    parts: dict[str, str] = {}
    if config.connection_string is not None:
        parts = parse_connection_string(config.connection_string.get().reveal())
        if not parts.get("AccountKey"):
            raise ConfigProblem(
                f"{where} connection_string", "has no AccountKey", "use an account key connection string"
            )
        key = Secret(parts["AccountKey"])
    else:
        assert config.account_key is not None
        key = config.account_key.get()
    name = config.account_name or parts.get("AccountName")
    if not name:
        raise ConfigProblem(f"{where} account_name", "is required", "set it (or AccountName in connection_string)")
    endpoint = config.endpoint or parts.get("BlobEndpoint", "").rstrip("/") or _default_endpoint(name, parts)
    return Account(name=name, key=key, endpoint=endpoint, public_endpoint=config.public_endpoint or endpoint)


def _default_endpoint(name: str, parts: dict[str, str]) -> str:
    scheme = parts.get("DefaultEndpointsProtocol", "https")
    suffix = parts.get("EndpointSuffix", "core.windows.net")
    return f"{scheme}://{name}.blob.{suffix}"
