"""reelflow's Prefect block types; `prefect block register -m blocks` registers every one."""

from blocks.asr import ASREndpoint
from blocks.comfyui import ComfyUIPool, ComfyUIServer
from blocks.storage import MediaStorage
from blocks.workflows import WorkflowSet

__all__ = ["ASREndpoint", "ComfyUIPool", "ComfyUIServer", "MediaStorage", "WorkflowSet"]
