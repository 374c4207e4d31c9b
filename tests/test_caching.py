"""Cache keys follow content, never paths or runs; retries follow the error class."""

from __future__ import annotations

from prefect.states import Failed

from tasks.comfyui.errors import OutOfMemory, PromptRejected, ServerUnreachable
from tasks.runtime.caching import content_key, retry_if_transient
from tasks.schema.refs import MediaRef


def test_the_same_content_gives_the_same_key_whatever_the_key_order() -> None:
    assert content_key("x", {"a": 1, "b": [1, 2]}) == content_key("x", {"b": [1, 2], "a": 1})


def test_any_change_of_content_or_kind_changes_the_key() -> None:
    base = content_key("sequence", {"seed": 1})
    assert content_key("sequence", {"seed": 2}) != base
    assert content_key("keyframe", {"seed": 1}) != base


def test_media_references_key_by_their_hash() -> None:
    ref = MediaRef(sha256="ab" * 32, suffix=".mp4", size=10)
    same = MediaRef(sha256="ab" * 32, suffix=".mp4", size=10)
    assert content_key("carry", ref) == content_key("carry", same)


def test_transient_errors_are_retried_and_rejections_are_not() -> None:
    def decided(error: Exception) -> bool:
        return retry_if_transient(None, None, Failed(data=error))  # type: ignore[arg-type]

    assert decided(ServerUnreachable("refused"))
    assert decided(
        OutOfMemory(
            prompt_id="p",
            node_id="3",
            node_type="KSampler",
            exception_type="torch.OutOfMemoryError",
            exception_message="oom",
        )
    )
    assert not decided(
        PromptRejected({"type": "prompt_outputs_failed_validation", "message": "bad"}, {})
    )
    assert not decided(ValueError("a bug"))
