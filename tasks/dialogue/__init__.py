"""The dialogue stage: hear each rendered sequence (ASR) and judge every scripted line.

`asr` transcribes, `judge` decides (pure), `check` is the cached Prefect task between them.
"""
