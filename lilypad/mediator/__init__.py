"""The mediator daemon (:mod:`.daemon`)."""
