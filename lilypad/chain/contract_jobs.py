"""Smart-contract jobs on ``LilypadOnChainJobCreator``: reads and the relaying steps.

:class:`ContractJobActions` is the part of :class:`~lilypad.chain.contracts.LilypadContracts`
(which inherits it) for contract jobs: :meth:`~ContractJobActions.contract_job` reads a job
(its ``JobTerms`` event, found by its indexed id, and ``getJob``); the relaying steps -
:meth:`~ContractJobActions.relay_agree`, :meth:`~ContractJobActions.relay_judge`,
:meth:`~ContractJobActions.relay_complete`, :meth:`~ContractJobActions.timeout_contract_job` -
are open to any account, and each reverts cleanly when another relayer got there first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lilypad.protocol.contract_jobs import ContractJob, JobOptions
from lilypad.protocol.deal import Deal

__all__ = ["ContractJobActions"]

T = TypeVar("T")


class ContractJobActions:
    """Contract-job methods of :class:`~lilypad.chain.contracts.LilypadContracts`. Sending
    methods take the signing ape ``account`` and return the receipt."""

    job_creator: Any

    if TYPE_CHECKING:  # provided by LilypadContracts
        deployment: Any

        def _send(self, method: Any, *args: Any, account: Any, **tx: Any) -> Any: ...

        def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

        def head_block(self) -> int: ...

    def required_deposit(self) -> int:
        """The deposit plain ``runJob`` takes (its default maximum payment)."""
        return int(self._read(self.job_creator.getRequiredDeposit))

    def job_defaults(self) -> JobOptions:
        """The options plain ``runJob`` gives a job."""
        return JobOptions.from_chain(self._read(self.job_creator.getDefaults))

    def contract_job(self, job_id: int) -> ContractJob | None:
        """Job ``job_id`` as the chain has it (``None``: no such job)."""
        from ape import chain
        from ape.types import LogFilter
        from eth_utils import to_checksum_address

        j = self._read(self.job_creator.getJob, job_id)
        if int(j.state) == 0:
            return None
        abi = self.job_creator.JobTerms.abi
        start = int(self.deployment.block_number or 0)
        log_filter = LogFilter.from_event(event=abi, search_topics={"id": job_id}, addresses=[self.job_creator.address],
                                          start_block=start, stop_block=self.head_block())
        logs = list(chain.provider.get_contract_logs(log_filter))
        if not logs:
            return None
        terms = logs[0]
        return ContractJob(
            id=int(job_id), caller=to_checksum_address(str(j.caller)), payee=to_checksum_address(str(j.payee)),
            module=str(terms.module), inputs=tuple(str(i) for i in terms.inputs),
            options=JobOptions.from_chain(terms.options), state=int(j.state), attempts=int(j.attempts),
            held=int(j.held), relayer=to_checksum_address(str(j.relayer)), deal_id=bytes(j.dealId),
            created_at=int(j.createdAt))

    def contract_deal_nonce(self, job_id: int, attempt: int) -> bytes:
        return bytes(self._read(self.job_creator.dealNonce, job_id, attempt))

    def relay_agree(self, job: ContractJob, deal: Deal, account: Any, **tx: Any) -> Any:
        """Agree, for the job creator contract, to ``deal`` for ``job`` (escrow from its deposit)."""
        return self._send(self.job_creator.agree, job.id, job.options.as_tuple(), deal.as_tuple(), account=account,
                          **tx)

    def relay_judge(self, job: ContractJob, deal: Deal, account: Any, **tx: Any) -> Any:
        """Accept ``deal``'s result, or send it to mediation with the job's check chance."""
        return self._send(self.job_creator.judge, job.id, job.options.as_tuple(), deal.as_tuple(), account=account,
                          **tx)

    def relay_complete(self, job: ContractJob, account: Any, **tx: Any) -> Any:
        """End ``job``'s settled deal: deliver and settle, or free the job for another deal."""
        return self._send(self.job_creator.complete, job.id, job.options.as_tuple(), account=account, **tx)

    def timeout_contract_job(self, job: ContractJob, account: Any, **tx: Any) -> Any:
        """End ``job`` past its timeout (no live deal): the payee is refunded."""
        return self._send(self.job_creator.timeoutJob, job.id, job.options.as_tuple(), account=account, **tx)

    def cancel_contract_job(self, job: ContractJob, account: Any, **tx: Any) -> Any:
        """End ``job`` (no live deal) as its payee or client: the payee is refunded."""
        return self._send(self.job_creator.cancelJob, job.id, job.options.as_tuple(), account=account, **tx)
