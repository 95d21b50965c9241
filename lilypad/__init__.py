"""lilypad: a trustless two-sided marketplace for containerised compute.

Clients pay tokens to run containerised "modules" on providers' nodes; deals
are settled on-chain. This package is kept free of imports so that the CLI
starts fast: import the subpackages you need (``lilypad.modules``,
``lilypad.results``, ``lilypad.protocol``, ...).
"""

__version__ = "0.1.0"
