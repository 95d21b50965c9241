"""The job creator: ``lilypad run``, ``lilypad status`` and ``lilypad fetch``.

* :mod:`lilypad.jobcreator.logic` - the run's stages and decisions, pure;
* :mod:`lilypad.jobcreator.run` - :func:`~lilypad.jobcreator.run.run_job` and
  friends, talking to the solver and the chain.
"""
