"""Job results: the IPFS CID (data id) of a results directory, in :mod:`lilypad.results.cid`.

Nothing is imported here, so importing the package stays cheap.
"""

__all__: list[str] = []
