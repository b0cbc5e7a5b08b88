"""Bootstrap runs: what a run is asked to do, the pipeline that does it, and who runs it.

- :mod:`service.runs.config`: ``RunConfig``, which embeds the libraries' own config types.
- :mod:`service.runs.pipeline`: ``open_pipeline`` (pool -> index -> backend -> stages) and
  ``RunPipeline.step``, the stages in sequence with the filters between them.
- :mod:`service.runs.worker`: claims runs under a lease and commits each iteration whole.
- :mod:`service.runs.foreground`: ``instructforge run``, one run in this process.
"""
