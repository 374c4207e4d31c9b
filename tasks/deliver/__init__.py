"""The deliver stage: the film folder an editor takes away, and the dailies page to judge it."""

from tasks.deliver.dailies.publish import publish_dailies
from tasks.deliver.folder import deliver_film, start_delivery

__all__ = ["deliver_film", "publish_dailies", "start_delivery"]
