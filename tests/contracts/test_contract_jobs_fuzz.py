r"""Hypothesis stateful fuzz over smart-contract jobs and their deals (issue 19): money is
conserved, the job creator contract holds exactly what its open jobs hold, and every job ends.

Rules create jobs with random options (maximum payment, relayer fee, check chance), let two
relayers agree bound deals (some too dear: refused), the provider agree and submit, anyone
judge, a mediator decide, anyone time a deal out, complete, cancel or time a job out - each in
any order, and each expected to succeed exactly when its preconditions hold (else it must
revert). After every step, read from the chain:

* the tokens of every account that acts, plus the two contracts that hold money, never change
  in total (nothing is minted or burnt);
* ``LilypadOnChainJobCreator`` holds exactly the sum over open jobs of ``held - spent`` (what
  each job has not put into its live deal's escrow) plus what a settled live deal paid back
  (recorded by ``LilypadPayments``), and nothing for ended jobs;
* the payee never pays more, over all its jobs, than their ``maxPayment``\ s.

At the end of each example every live deal is timed out and completed and every open job
ended: the job creator contract and ``LilypadPayments`` hold nothing.
"""

from __future__ import annotations

import ape
import pytest
from fuzz_budget import stateful_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from lilypad.protocol.deal import TIMEOUT_FOR_STATE, AgreementState

LP = 10**18
S = AgreementState
ZERO = "0x" + "00" * 20
DIGEST = b"\xcd" * 32


@pytest.mark.fuzzing
def test_contract_jobs_state_machine(chain, job_manager, controller, storage, payments, mediation, token, make_deal,
                                     payee, stranger, job_creator, resource_provider, mediators, deployer):
    relayers = [stranger, job_creator]
    members = {m.address: m for m in mediators}
    everyone = [payee.address, *(r.address for r in relayers), resource_provider.address,
                *(m.address for m in mediators), job_manager.address, payments.address]
    token.approve(job_manager, 2**256 - 1, sender=payee)
    token.approve(payments, 2**256 - 1, sender=resource_provider)

    def total() -> int:
        return sum(int(token.balanceOf(a)) for a in everyone)

    class ContractJobs(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self._isolation = chain.isolate()
            self._isolation.__enter__()
            self.jobs: list[tuple[int, tuple]] = []
            self.deals: dict[int, object] = {}  # job id -> its live deal's terms
            self.total = total()
            self.payee_start = int(token.balanceOf(payee))

        # -------------------------------------------------------------- helpers
        def _job(self, i: int):
            job_id, options = self.jobs[i % len(self.jobs)]
            return job_id, options, job_manager.getJob(job_id)

        def _state(self, job_id: int) -> S | None:
            deal = self.deals.get(job_id)
            return None if deal is None else S(int(storage.getAgreement(deal.deal_id).state))

        def _in_window(self, job_id: int) -> bool:
            """Whether the live deal's current window is still open (a party may still act)."""
            deal = self.deals[job_id]
            a, t = storage.getAgreement(deal.deal_id), deal.timeouts
            start, length = {S.DEAL_NEGOTIATING: (a.createdAt, t.agree), S.DEAL_AGREED: (a.agreedAt, t.submit_results),
                             S.RESULTS_SUBMITTED: (a.resultsSubmittedAt, t.judge_results),
                             S.RESULTS_CHECKED: (a.mediationRequestedAt, t.mediate_results)}[S(int(a.state))]
            return chain.pending_timestamp + 5 < int(start) + length  # a margin for the block clock

        # -------------------------------------------------------------- rules
        @rule(max_payment=st.sampled_from([2 * LP, 4 * LP, 6 * LP]), fee=st.sampled_from([0, LP // 10, LP]),
              check=st.sampled_from([0, 0, 5_000, 10_000]))
        def new_job(self, max_payment, fee, check):
            options = (max_payment, fee, 3600, 200_000, check, ZERO)
            receipt = job_manager.runJobWithOptions("cowsay:v0.0.1", ["Message=fuzz"], payee, options, sender=payee)
            self.jobs.append((receipt.events.filter(job_manager.JobAdded)[0].id, options))

        @rule(i=st.integers(0, 50), collateral=st.sampled_from([LP, 2 * LP, 5 * LP]), who=st.integers(0, 1))
        def relay_agree(self, i, collateral, who):
            if not self.jobs:
                return
            job_id, options, job = self._job(i)
            deal = make_deal(job_creator=job_manager.address, mediators=list(members),
                             pricing={"instruction_price": LP, "payment_collateral": collateral, "mediation_fee": LP},
                             timeouts={"judge_results_collateral": 1, "submit_results_collateral": LP // 2})
            deal = deal.model_copy(update={"nonce": bytes(job_manager.dealNonce(job_id, int(job.attempts)))})
            most = collateral + 1 + (LP if options[4] else 0) + options[1]
            deadline = int(job.createdAt) + options[2]
            ok = int(job.state) == 1 and bytes(job.dealId) == bytes(32) and most <= int(job.held)
            if ok and abs(chain.pending_timestamp - deadline) <= 5:
                return  # at the deadline's edge the block clock decides: no expectation
            ok = ok and chain.pending_timestamp < deadline
            if ok:
                job_manager.agree(job_id, options, deal.as_tuple(), sender=relayers[who])
                self.deals[job_id] = deal
            else:
                with ape.reverts():
                    job_manager.agree(job_id, options, deal.as_tuple(), sender=relayers[who])

        @rule(i=st.integers(0, 50), count=st.integers(1, 2))
        def provider_steps(self, i, count):
            if not self.jobs:
                return
            job_id = self.jobs[i % len(self.jobs)][0]
            state, deal = self._state(job_id), self.deals.get(job_id)
            if state not in (S.DEAL_NEGOTIATING, S.DEAL_AGREED) or not self._in_window(job_id):
                return
            if state == S.DEAL_NEGOTIATING:
                controller.agree(deal.as_tuple(), sender=resource_provider)
            elif state == S.DEAL_AGREED and count * LP <= deal.pricing.payment_collateral:
                controller.addResult(deal.as_tuple(), DIGEST, count, sender=resource_provider)

        @rule(i=st.integers(0, 50), who=st.integers(0, 1))
        def judge(self, i, who):
            if not self.jobs:
                return
            job_id, options, job = self._job(i)
            if int(job.state) == 1 and self._state(job_id) == S.RESULTS_SUBMITTED and self._in_window(job_id):
                job_manager.judge(job_id, options, self.deals[job_id].as_tuple(), sender=relayers[who])
            elif job_id in self.deals:
                with ape.reverts():
                    job_manager.judge(job_id, options, self.deals[job_id].as_tuple(), sender=relayers[who])

        @rule(i=st.integers(0, 50), verdict=st.sampled_from(["accept", "reject", "nondet"]))
        def mediate(self, i, verdict):
            if not self.jobs:
                return
            job_id = self.jobs[i % len(self.jobs)][0]
            if self._state(job_id) != S.RESULTS_CHECKED or not self._in_window(job_id):
                return
            deal = self.deals[job_id]
            controller.assignMediator(deal.as_tuple(), sender=stranger)
            member = members[str(mediation.getPanel(deal.deal_id)[1][0])]
            fn = {"accept": controller.mediationAcceptResult, "reject": controller.mediationRejectResult,
                  "nondet": controller.mediationNonDeterministic}[verdict]
            fn(deal.as_tuple(), sender=member)

        @rule(i=st.integers(0, 50))
        def time_out_deal(self, i):
            if not self.jobs:
                return
            job_id = self.jobs[i % len(self.jobs)][0]
            state = self._state(job_id)
            if state not in TIMEOUT_FOR_STATE:
                return
            chain.mine(timestamp=chain.pending_timestamp + 2_000)
            getattr(controller, TIMEOUT_FOR_STATE[state])(self.deals[job_id].as_tuple(), sender=stranger)

        @rule(i=st.integers(0, 50))
        def complete(self, i):
            if not self.jobs:
                return
            job_id, options, job = self._job(i)
            live = bytes(job.dealId) != bytes(32)
            if int(job.state) == 1 and live and payments.getEscrow(bytes(job.dealId)).settled:
                job_manager.complete(job_id, options, sender=stranger)
                if bytes(job_manager.getJob(job_id).dealId) == bytes(32):
                    self.deals.pop(job_id, None)
            else:
                with ape.reverts():
                    job_manager.complete(job_id, options, sender=stranger)

        @rule(i=st.integers(0, 50), by_timeout=st.booleans())
        def end_job(self, i, by_timeout):
            if not self.jobs:
                return
            job_id, options, job = self._job(i)
            ok = int(job.state) == 1 and bytes(job.dealId) == bytes(32)
            if ok and by_timeout:
                deadline = int(job.createdAt) + options[2]
                if chain.pending_timestamp <= deadline:  # (the clock may already be past it: never back)
                    chain.mine(timestamp=deadline + 1)
                job_manager.timeoutJob(job_id, options, sender=stranger)
            elif ok:
                job_manager.cancelJob(job_id, options, sender=payee)
            else:
                with ape.reverts():
                    job_manager.cancelJob(job_id, options, sender=payee)

        # -------------------------------------------------------------- invariants
        @invariant()
        def money_is_conserved_and_held_exactly(self):
            assert total() == self.total
            owed = 0
            for job_id, _ in self.jobs:
                j = job_manager.getJob(job_id)
                if int(j.state) == 1:
                    owed += int(j.held)
                    if bytes(j.dealId) != bytes(32):  # less its live deal's escrow, plus what a settlement returned
                        escrow = payments.getEscrow(bytes(j.dealId))
                        owed += -int(j.spent) + (int(escrow.jobCreator) if escrow.settled else 0)
                else:
                    assert int(j.held) == 0
            assert int(token.balanceOf(job_manager)) == owed
            assert int(token.balanceOf(payee)) >= self.payee_start - sum(o[0] for _, o in self.jobs)

        def teardown(self):
            try:
                for job_id, options in self.jobs:
                    for _ in range(12):
                        j = job_manager.getJob(job_id)
                        if int(j.state) != 1:
                            break
                        deal = self.deals.get(job_id)
                        if bytes(j.dealId) != bytes(32) and deal is not None:
                            state = S(int(storage.getAgreement(deal.deal_id).state))
                            if state in TIMEOUT_FOR_STATE:
                                chain.mine(timestamp=chain.pending_timestamp + 2_000)
                                getattr(controller, TIMEOUT_FOR_STATE[state])(deal.as_tuple(), sender=stranger)
                            else:
                                job_manager.complete(job_id, options, sender=stranger)
                                self.deals.pop(job_id, None)
                        else:
                            job_manager.cancelJob(job_id, options, sender=payee)
                    assert int(job_manager.getJob(job_id).state) in (2, 3), f"job {job_id} never ended"
                assert int(token.balanceOf(job_manager)) == 0  # nothing left behind
                assert int(token.balanceOf(payments)) == 0  # no escrow either (settings v0: no pot)
                assert total() == self.total
            finally:
                self._isolation.__exit__(None, None, None)

    run_state_machine_as_test(ContractJobs, settings=stateful_settings())
