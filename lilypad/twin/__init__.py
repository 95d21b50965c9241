"""A digital twin of the market (issue 18): the contracts' money rules as a fast model
(:mod:`lilypad.twin.model`) checked deal for deal against the real contracts on anvil
(:mod:`lilypad.twin.onchain`)."""

from lilypad.twin.model import BPS, MAX_ROUNDS, DealCourse, Ending, Ledger, Payoff, Terms, settle

__all__ = ["BPS", "MAX_ROUNDS", "DealCourse", "Ending", "Ledger", "Payoff", "Terms", "settle"]
