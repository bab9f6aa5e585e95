"""Runs a group of agents at once and merges their events into one stream, as they happen.

Each agent runs in its own task under its timeout; every agent ends with exactly one
`AgentFinished`, its answer or its failure, so one failing agent never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from lattice.errors import LatticeError
from lattice.server.chat import ChatRequest, Delta, Finish
from lattice.server.swarm.agents import AgentRunner, Opened
from lattice.server.swarm.events import AgentDelta, AgentFailure, AgentFinished, AgentStarted

log = logging.getLogger(__name__)

AgentReport = AgentStarted | AgentDelta | AgentFinished


@dataclass(frozen=True)
class Call:
    """One agent's chat within a swarm."""

    agent: str
    request: ChatRequest
    round: int = 0
    prompt: str = ""


async def run_agents(
    run: AgentRunner, calls: Sequence[Call], *, agent_timeout: float, race: bool = False
) -> AsyncGenerator[AgentReport, None]:
    """Runs `calls` at once, each under `agent_timeout` seconds, and yields their events as they
    come. With `race`, the first agent to finish successfully cancels the others at once (their
    slots are free before its `AgentFinished` is yielded); they end with a CANCELLED failure.
    Closing this generator cancels whatever still runs."""
    crowd = _Crowd(run, calls, agent_timeout)
    try:
        remaining = len(calls)
        while remaining:
            report = await crowd.reports.get()
            if isinstance(report, AgentFinished):
                remaining -= 1
                if race and report.succeeded and not crowd.cancelling:
                    await crowd.cancel_all_but(report.agent, f"cancelled: {report.agent} finished first")
            yield report
    finally:
        await crowd.cancel_all_but(None, "cancelled: the swarm ended")


class _Crowd:
    def __init__(self, run: AgentRunner, calls: Sequence[Call], agent_timeout: float) -> None:
        self.reports: asyncio.Queue[AgentReport] = asyncio.Queue()
        self.cancelling: dict[str, str] = {}
        """Agents being cancelled, and why."""
        self._run = run
        self._timeout = agent_timeout
        self._calls = {call.agent: call for call in calls}
        self._finished: set[str] = set()
        self._tasks = {call.agent: asyncio.create_task(self._run_one(call)) for call in calls}

    def _emit(self, report: AgentReport) -> None:
        if isinstance(report, AgentFinished):
            if report.agent in self._finished:
                return
            self._finished.add(report.agent)
        self.reports.put_nowait(report)

    async def cancel_all_but(self, keep: str | None, why: str) -> None:
        """Cancels every other agent still running and waits until each has let go of its chat."""
        losers = {agent: task for agent, task in self._tasks.items() if agent != keep and not task.done()}
        for agent, task in losers.items():
            self.cancelling.setdefault(agent, why)
            task.cancel()
        await asyncio.gather(*losers.values(), return_exceptions=True)
        for agent in losers:
            # A task cancelled before its first step never ran its own handler: report for it.
            self._emit(self._failed(self._calls[agent], "", "", _cancelled(self.cancelling[agent])))

    async def _run_one(self, call: Call) -> None:
        model = ""
        parts: list[str] = []
        finish: Finish | None = None
        try:
            async with asyncio.timeout(self._timeout), aclosing(self._run(call.request)) as events:
                async for event in events:
                    if isinstance(event, Opened):
                        model = event.model
                        self._emit(AgentStarted(call.agent, model, call.round, call.prompt, event.resolution))
                    elif isinstance(event, Delta) and event.text:
                        parts.append(event.text)
                        self._emit(AgentDelta(call.agent, event.text, call.round))
                    elif isinstance(event, Finish):
                        finish = event
                        break
        except LatticeError as error:
            failure: AgentFailure | None = AgentFailure.from_error(error)
        except TimeoutError:
            failure = AgentFailure("DEADLINE_EXCEEDED", "AGENT_TIMEOUT", f"no answer within {self._timeout:g} s")
        except asyncio.CancelledError:
            why = self.cancelling.get(call.agent, "cancelled: the swarm ended")
            self._emit(self._failed(call, model, "".join(parts), _cancelled(why)))
            raise
        except Exception:
            log.exception("agent %s of a swarm failed unexpectedly", call.agent)
            failure = AgentFailure("INTERNAL", "INTERNAL", "internal error; the gateway log has the details")
        else:
            failure = None
            if finish is None:
                failure = AgentFailure("INTERNAL", "BACKEND_FAILED", "the agent's stream ended without finishing")
        if failure is not None:
            self._emit(self._failed(call, model, "".join(parts), failure))
        else:
            self._emit(AgentFinished(call.agent, model, "".join(parts), call.round, finish))

    @staticmethod
    def _failed(call: Call, model: str, text: str, failure: AgentFailure) -> AgentFinished:
        return AgentFinished(call.agent, model, text, call.round, None, failure)


def _cancelled(why: str) -> AgentFailure:
    return AgentFailure("CANCELLED", "SWARM_CANCELLED", why)
