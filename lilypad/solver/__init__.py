"""The solver: signed offers from job creators and resource providers, and the
matcher that pairs them into deals (pure logic; the daemon lives elsewhere)."""
