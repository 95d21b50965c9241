"""On-chain protocol: deal terms, the contracts' typed wrappers, deployments."""
