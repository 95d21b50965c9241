"""A local network made of real processes: anvil, the deployed contracts, lilypad services."""

__all__: list[str] = []
