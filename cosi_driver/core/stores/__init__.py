"""State stores: where the driver keeps ownership records and stored credentials.

``StateStore`` is the protocol; ``FileStateStore`` the default; ``KubernetesSecretStore``
(``cosi_driver.core.stores.kubernetes``, imported only when configured) keeps each document in a
Secret in the driver's own namespace for in-cluster runs.
"""

from cosi_driver.core.stores.base import StateStore
from cosi_driver.core.stores.file import FileStateStore
from cosi_driver.core.stores.memory import MemoryStateStore

__all__ = ["FileStateStore", "MemoryStateStore", "StateStore"]
