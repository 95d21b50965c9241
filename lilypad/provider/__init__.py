"""The resource provider: its pure decisions (:mod:`.logic`) and its daemon (:mod:`.daemon`)."""
