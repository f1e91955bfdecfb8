"""Backend type ``azure-blob``: Azure Blob Storage containers, grants as stored access policies + SAS.

Needs the ``azure`` extra (``azure-storage-blob`` and its aiohttp transport), imported only when a
configuration names this backend.
"""

from __future__ import annotations

from cosi_driver.backends.azure.backend import AzureAccessParams, AzureBlobBackend, AzureBucketParams
from cosi_driver.backends.azure.config import AzureConfig
from cosi_driver.sdk import BackendType, ObjectProtocol

BACKEND = BackendType(
    type_name="azure-blob",
    summary="Azure Blob Storage (or Azurite): one container per bucket in one storage account, one stored "
    "access policy + SAS per access.",
    config=AzureConfig,
    bucket_params=AzureBucketParams,
    access_params=AzureAccessParams,
    build=AzureBlobBackend,
    protocols=(ObjectProtocol.AZURE,),
)

__all__ = ["BACKEND", "AzureBlobBackend", "AzureConfig"]
