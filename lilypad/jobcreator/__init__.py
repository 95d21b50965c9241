"""The job creator: the market's client side, driven by a person or by contracts.

* :mod:`lilypad.jobcreator.steps` - the steps both front ends share: the job
  offer for a module, the solver's signing domain checked against the
  deployment, a matched deal checked against the offer;
* :mod:`lilypad.jobcreator.logic` - stages, decisions and verdicts, pure;
* :mod:`lilypad.jobcreator.run` - ``lilypad run``: :func:`~lilypad.jobcreator.run.run_job`
  takes one job from offer to verified result;
* :mod:`lilypad.jobcreator.results` - verified downloads
  (:class:`~lilypad.jobcreator.results.Download`), ``lilypad status`` and ``lilypad fetch``;
* :mod:`lilypad.jobcreator.inputs` - a job's input files, checked and uploaded;
* :mod:`lilypad.jobcreator.bridge` - ``lilypad jobcreator``: the same steps driven
  by ``JobAdded`` events, delivering results to client contracts.
"""
