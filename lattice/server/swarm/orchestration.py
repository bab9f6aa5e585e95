"""Fanout, vote, pipeline and debate, over an injectable agent runner.

Each method is an async generator of `SwarmEvent`s. Everything that can be refused is refused
before the first event (limits, names, templates, unknown models), so a caller that reads the
first event either has a running swarm or an error about its request. Agents run through the
runner they are given; in the gateway that is `GatewayAgents.run`, an ordinary admitted chat.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace

from lattice.errors import InvalidArgument, ModelNotFound, SwarmFailed
from lattice.server.chat import CHARS_PER_TOKEN, ChatRequest, Message, Role, Sampling, TextPart, Usage
from lattice.server.swarm.agents import AgentRunner, RequestCheck
from lattice.server.swarm.crowd import Call, run_agents
from lattice.server.swarm.events import (
    AgentFinished,
    RoundStarted,
    Score,
    SwarmEvent,
    SwarmResult,
    Verdict,
    VerdictMethod,
)
from lattice.server.swarm.judge import (
    JUDGE_SYSTEM_PROMPT,
    Candidate,
    Unreadable,
    judge_prompt,
    label,
    read_verdict,
    render_conversation,
    verdict_format,
)
from lattice.server.swarm.limits import SwarmLimits, check_agents, check_rounds, check_tokens, tightened
from lattice.server.swarm.spec import Agent, Conclusion, DebateSpec, FanoutSpec, PipelineSpec, Strategy, VoteSpec
from lattice.server.swarm.templates import INPUT, PREVIOUS, check_steps, placeholders, render

JUDGE = "judge"
SYNTHESIS = "synthesis"
RESERVED_NAMES = (JUDGE, SYNTHESIS)


class Swarm:
    def __init__(
        self,
        run: AgentRunner,
        limits: SwarmLimits,
        *,
        max_tokens_ceiling: int,
        judge_max_tokens: int,
        check: RequestCheck | None = None,
        constrains: Callable[[ChatRequest], bool] | None = None,
    ) -> None:
        """`run` runs one agent's chat; `check` refuses, up front, a chat that could never run;
        `constrains` says whether a model can serve a request's JSON schema (the judge's verdict is
        then constrained to it, so it always parses). `max_tokens_ceiling` is what an unset `max_tokens`
        may reach, for the token budget."""
        self._run = run
        self._limits = limits
        self._ceiling = max_tokens_ceiling
        self._judge_max_tokens = judge_max_tokens
        self._check = check
        self._constrains = constrains

    async def fanout(self, spec: FanoutSpec) -> AsyncGenerator[SwarmEvent, None]:
        """Every agent on the same messages; all answers, no winner."""
        async with aclosing(self.vote(VoteSpec(spec.base, spec.agents, spec.limits, Strategy.FANOUT))) as events:
            async for event in events:
                yield event

    async def vote(self, spec: VoteSpec) -> AsyncGenerator[SwarmEvent, None]:
        limits = tightened(self._limits, spec.limits)
        agents = _named(spec.agents)
        check_agents(limits, len(agents), field="agents")
        _require_messages(spec.base)
        calls = [Call(agent.name, self._agent_request(spec.base, agent, i)) for i, agent in enumerate(agents)]
        judge = (
            self._judge_request(spec.base, spec.judge, spec.judge_max_tokens, temperature=0.0)
            if spec.strategy is Strategy.BEST_OF_N and len(calls) > 1
            else None
        )
        cost = sum(self._cost(call.request) for call in calls)
        if judge is not None:
            cost += self._cost(judge, quoted=len(calls), answer_bound=self._bound(spec.base))
        check_tokens(limits, cost)
        for i, call in enumerate(calls):
            self._check_request(call.request, f"agents[{i}].model")
        if judge is not None:
            self._check_request(judge, JUDGE)

        usage = _Usage()
        finished: list[AgentFinished] = []
        race = spec.strategy is Strategy.FIRST_SUCCESS
        async with aclosing(
            run_agents(self._run, calls, agent_timeout=limits.agent_timeout_seconds, race=race)
        ) as reports:
            async for report in reports:
                usage.add(report)
                if isinstance(report, AgentFinished):
                    finished.append(report)
                yield report
        answers = _in_order(finished, agents)
        candidates = _candidates(answers)
        if not candidates:
            raise _all_failed(answers)

        verdict: Verdict | None = None
        if spec.strategy is Strategy.FIRST_SUCCESS:
            first = next(f for f in finished if f.succeeded)
            verdict = _verdict_for(candidates, first.agent, VerdictMethod.FIRST_SUCCESS)
        elif spec.strategy is Strategy.LONGEST:
            verdict = _longest(candidates)
        elif spec.strategy is Strategy.BEST_OF_N:
            if judge is None or len(candidates) == 1:
                verdict = _verdict_for(candidates, candidates[0].agent, VerdictMethod.SOLE_CANDIDATE)
            else:
                async with aclosing(
                    self._judged(judge, spec.base.messages, candidates, spec.criteria, limits, usage)
                ) as judging:
                    async for event in judging:
                        if isinstance(event, Verdict):
                            verdict = event
                        else:
                            yield event
        if verdict is not None:
            yield verdict
        winner = verdict.winner if verdict is not None else ""
        text = next((c.text for c in candidates if c.agent == winner), "")
        yield SwarmResult(text, winner, answers, usage.total)

    async def pipeline(self, spec: PipelineSpec) -> AsyncGenerator[SwarmEvent, None]:
        limits = tightened(self._limits, spec.limits)
        check_steps(spec.steps)
        check_agents(limits, len(spec.steps), field="steps", what="steps")
        # Probes: each step's chat as far as it is known before the run (the template, unrendered).
        probes = [
            self._agent_request(spec.base, Agent(step.name, step.model, step.system_prompt), i, (_user(step.prompt),))
            for i, step in enumerate(spec.steps)
        ]
        bound = self._bound(spec.base)
        input_tokens = len(spec.input) // CHARS_PER_TOKEN
        cost = 0
        for i, (step, probe) in enumerate(zip(spec.steps, probes, strict=True)):
            inserted = placeholders(step.prompt)
            from_input = sum(1 for n in inserted if n == INPUT or (n == PREVIOUS and i == 0))
            cost += self._cost(probe, quoted=len(inserted) - from_input, answer_bound=bound) + from_input * input_tokens
        check_tokens(limits, cost)
        for i, probe in enumerate(probes):
            self._check_request(probe, f"steps[{i}].model")

        usage = _Usage()
        values = {INPUT: spec.input, PREVIOUS: spec.input}
        answers: list[AgentFinished] = []
        for i, (step, probe) in enumerate(zip(spec.steps, probes, strict=True)):
            prompt = render(step.prompt, values)
            messages = (*probe.messages[:-1], _user(prompt))
            call = Call(step.name, replace(probe, messages=messages), prompt=prompt)
            done: AgentFinished | None = None
            async with aclosing(run_agents(self._run, [call], agent_timeout=limits.agent_timeout_seconds)) as reports:
                async for report in reports:
                    usage.add(report)
                    if isinstance(report, AgentFinished):
                        done = report
                    yield report
            assert done is not None
            if done.failure is not None:
                raise SwarmFailed(
                    f"pipeline step {step.name!r} failed: {done.failure.message}",
                    done.failure,
                    step=step.name,
                    field=f"steps[{i}]",
                )
            answers.append(done)
            values[step.name] = values[PREVIOUS] = done.text
        yield SwarmResult(values[PREVIOUS], "", tuple(answers), usage.total)

    async def debate(self, spec: DebateSpec) -> AsyncGenerator[SwarmEvent, None]:
        limits = tightened(self._limits, spec.limits)
        agents = _named(spec.agents)
        if len(agents) < 2:
            raise InvalidArgument("a debate needs at least two agents", field="agents")
        check_agents(limits, len(agents), field="agents")
        if spec.rounds < 1:
            raise InvalidArgument(f"rounds must be at least 1, got {spec.rounds}", field="rounds")
        check_rounds(limits, spec.rounds)
        _require_messages(spec.base)
        requests = [self._agent_request(spec.base, agent, i) for i, agent in enumerate(agents)]
        temperature = 0.0 if spec.conclusion is Conclusion.JUDGE else spec.base.sampling.temperature
        closer = self._judge_request(spec.base, spec.judge, spec.judge_max_tokens, temperature=temperature)
        bound = self._bound(spec.base)
        first_round = sum(self._cost(r) for r in requests)
        later_round = sum(self._cost(r, quoted=len(agents), answer_bound=bound) for r in requests)
        cost = (
            first_round + (spec.rounds - 1) * later_round + self._cost(closer, quoted=len(agents), answer_bound=bound)
        )
        check_tokens(limits, cost)
        for i, request in enumerate(requests):
            self._check_request(request, f"agents[{i}].model")
        self._check_request(closer, JUDGE if spec.conclusion is Conclusion.JUDGE else SYNTHESIS)

        usage = _Usage()
        last: dict[str, AgentFinished] = {}  # each agent's latest successful answer
        latest: dict[str, AgentFinished] = {}  # each agent's latest answer or failure
        for round_ in range(1, spec.rounds + 1):
            yield RoundStarted(round_, spec.rounds)
            calls = [
                self._round_call(agent, request, round_, last, agents)
                for agent, request in zip(agents, requests, strict=True)
            ]
            async with aclosing(run_agents(self._run, calls, agent_timeout=limits.agent_timeout_seconds)) as reports:
                async for report in reports:
                    usage.add(report)
                    if isinstance(report, AgentFinished):
                        latest[report.agent] = report
                        if report.succeeded:
                            last[report.agent] = report
                    yield report
            if not last:
                raise _all_failed(tuple(latest[a.name] for a in agents))
        answers = tuple(last.get(a.name) or latest[a.name] for a in agents)
        candidates = _candidates(answers)

        verdict: Verdict | None = None
        text = ""
        if spec.conclusion is Conclusion.JUDGE:
            judging = self._judged(closer, spec.base.messages, candidates, spec.criteria, limits, usage)
        else:
            judging = self._synthesis(closer, spec.base.messages, candidates, limits, usage)
        async with aclosing(judging):
            async for event in judging:
                if isinstance(event, Verdict):
                    verdict = event
                    continue
                if isinstance(event, AgentFinished) and event.agent == SYNTHESIS and event.succeeded:
                    text = event.text
                yield event
        if verdict is not None:
            yield verdict
            text = next(c.text for c in candidates if c.agent == verdict.winner)
        yield SwarmResult(text, verdict.winner if verdict is not None else "", answers, usage.total)

    def _round_call(
        self,
        agent: Agent,
        request: ChatRequest,
        round_: int,
        last: dict[str, AgentFinished],
        agents: Sequence[Agent],
    ) -> Call:
        """Round 1 answers the conversation; later rounds add the agent's own last answer and the others'."""
        if round_ == 1:
            return Call(agent.name, request, round_)
        others = [(a.name, last[a.name].text) for a in agents if a.name != agent.name and a.name in last]
        prompt = _rebuttal_prompt(others)
        own = (Message(Role.ASSISTANT, (TextPart(last[agent.name].text),)),) if agent.name in last else ()
        return Call(agent.name, replace(request, messages=(*request.messages, *own, _user(prompt))), round_, prompt)

    async def _judged(
        self,
        judge: ChatRequest,
        conversation: Sequence[Message],
        candidates: Sequence[Candidate],
        criteria: str,
        limits: SwarmLimits,
        usage: _Usage,
    ) -> AsyncGenerator[SwarmEvent, None]:
        """The judge's events, then its `Verdict`; a judge that fails or cannot be read gives the
        longest answer the win, and the verdict says why."""
        if len(candidates) == 1:
            yield _verdict_for(candidates, candidates[0].agent, VerdictMethod.SOLE_CANDIDATE)
            return
        prompt = judge_prompt(conversation, candidates, criteria)
        judge = replace(judge, messages=(_system(JUDGE_SYSTEM_PROMPT), _user(prompt)))
        constrained = replace(judge, response_format=verdict_format([c.label for c in candidates]))
        if self._constrains is not None and self._constrains(constrained):
            judge = constrained
        call = Call(JUDGE, judge, prompt=prompt)
        outcome: list[AgentFinished] = []
        async with aclosing(self._run_single(call, limits, usage, outcome)) as events:
            async for event in events:
                yield event
        done = outcome[-1]
        if done.failure is not None:
            yield _longest(candidates, f"the judge failed ({done.failure.message})")
            return
        try:
            reading = read_verdict(done.text, [c.label for c in candidates])
        except Unreadable as unreadable:
            yield _longest(candidates, str(unreadable))
            return
        winner = next(c for c in candidates if c.label == reading.label)
        scores = tuple(
            Score(c.agent, c.label, reading.scores[c.label]) for c in candidates if c.label in reading.scores
        )
        yield Verdict(winner.agent, winner.label, VerdictMethod.JUDGE, scores, reading.reasoning)

    async def _synthesis(
        self,
        synthesis: ChatRequest,
        conversation: Sequence[Message],
        candidates: Sequence[Candidate],
        limits: SwarmLimits,
        usage: _Usage,
    ) -> AsyncGenerator[SwarmEvent, None]:
        """The synthesis's events; if it fails, a `Verdict` for the longest answer instead."""
        prompt = _synthesis_prompt(conversation, candidates)
        call = Call(SYNTHESIS, replace(synthesis, messages=(_user(prompt),)), prompt=prompt)
        outcome: list[AgentFinished] = []
        async with aclosing(self._run_single(call, limits, usage, outcome)) as events:
            async for event in events:
                yield event
        done = outcome[-1]
        if done.failure is not None:
            yield _longest(candidates, f"the synthesis failed ({done.failure.message})")

    async def _run_single(
        self, call: Call, limits: SwarmLimits, usage: _Usage, outcome: list[AgentFinished]
    ) -> AsyncGenerator[SwarmEvent, None]:
        """One helper agent's events (the judge, the synthesis); its `AgentFinished` is added to `outcome`."""
        async with aclosing(run_agents(self._run, [call], agent_timeout=limits.agent_timeout_seconds)) as reports:
            async for report in reports:
                usage.add(report)
                if isinstance(report, AgentFinished):
                    outcome.append(report)
                yield report

    def _agent_request(
        self, base: ChatRequest, agent: Agent, index: int, messages: tuple[Message, ...] | None = None
    ) -> ChatRequest:
        seed = agent.seed
        if seed is None and base.sampling.seed is not None:
            seed = base.sampling.seed + index
        temperature = agent.temperature if agent.temperature is not None else base.sampling.temperature
        system = (_system(agent.system_prompt),) if agent.system_prompt else ()
        return replace(
            base,
            model=agent.model,
            messages=(*system, *(base.messages if messages is None else messages)),
            sampling=replace(base.sampling, temperature=temperature, seed=seed),
        )

    def _judge_request(
        self, base: ChatRequest, expression: str, max_tokens: int | None, *, temperature: float
    ) -> ChatRequest:
        if max_tokens is not None and not 1 <= max_tokens <= self._ceiling:
            raise InvalidArgument(
                f"judge_max_tokens must be between 1 and {self._ceiling}, got {max_tokens}", field="judge_max_tokens"
            )
        return replace(
            base,
            model=expression,
            max_tokens=max_tokens or min(self._judge_max_tokens, self._ceiling),
            sampling=Sampling(temperature=temperature, seed=base.sampling.seed),
        )

    def _bound(self, base: ChatRequest) -> int:
        """The longest answer one agent may give."""
        return base.max_tokens or self._ceiling

    def _cost(self, request: ChatRequest, *, quoted: int = 0, answer_bound: int = 0) -> int:
        """A chat's tokens at most: its prompt, the `quoted` answers it will be shown, its answer."""
        return request.estimated_prompt_tokens + quoted * answer_bound + (request.max_tokens or self._ceiling)

    def _check_request(self, request: ChatRequest, where: str) -> None:
        if self._check is None:
            return
        try:
            self._check(request)
        except ModelNotFound as error:
            raise ModelNotFound(f"{where}: {error.message}", metadata={**error.metadata, "field": where}) from None


class _Usage:
    """Every chat's usage, added up as their `AgentFinished` events pass."""

    def __init__(self) -> None:
        self.total = Usage()

    def add(self, event: SwarmEvent) -> None:
        if isinstance(event, AgentFinished):
            used = event.usage
            self.total = Usage(
                self.total.prompt_tokens + used.prompt_tokens, self.total.completion_tokens + used.completion_tokens
            )


def _named(agents: Sequence[Agent]) -> tuple[Agent, ...]:
    if not agents:
        raise InvalidArgument("agents must not be empty", field="agents")
    named = tuple(replace(a, name=a.name or f"agent-{i + 1}") for i, a in enumerate(agents))
    seen: set[str] = set()
    for i, agent in enumerate(named):
        if agent.name in RESERVED_NAMES:
            raise InvalidArgument(f"agent name {agent.name!r} is reserved", field=f"agents[{i}].name")
        if agent.name in seen:
            raise InvalidArgument(f"agent name {agent.name!r} is used twice", field=f"agents[{i}].name")
        seen.add(agent.name)
    return named


def _require_messages(base: ChatRequest) -> None:
    if not base.messages:
        raise InvalidArgument("messages must not be empty", field="messages")


def _in_order(finished: Sequence[AgentFinished], agents: Sequence[Agent]) -> tuple[AgentFinished, ...]:
    by_agent = {f.agent: f for f in finished}
    return tuple(by_agent[a.name] for a in agents)


def _candidates(answers: Sequence[AgentFinished]) -> tuple[Candidate, ...]:
    """The successful answers, labelled A, B, C… in the request's order (not finishing order),
    so the same answers always get the same labels."""
    succeeded = [a for a in answers if a.succeeded]
    return tuple(Candidate(a.agent, label(i), a.text) for i, a in enumerate(succeeded))


def _verdict_for(candidates: Sequence[Candidate], agent: str, method: VerdictMethod) -> Verdict:
    winner = next(c for c in candidates if c.agent == agent)
    return Verdict(winner.agent, winner.label, method)


def _longest(candidates: Sequence[Candidate], fallback: str = "") -> Verdict:
    """The longest answer (`max` keeps the earliest on a tie); scores are lengths in characters."""
    winner = max(candidates, key=lambda c: len(c.text))
    scores = tuple(Score(c.agent, c.label, float(len(c.text))) for c in candidates)
    reason = f"{fallback}; the longest answer won instead" if fallback else ""
    return Verdict(winner.agent, winner.label, VerdictMethod.LONGEST, scores, fallback_reason=reason)


def _all_failed(answers: Sequence[AgentFinished]) -> SwarmFailed:
    failures = [(a.agent, a.failure) for a in answers if a.failure is not None]
    summary = "; ".join(f"{agent}: {failure.message}" for agent, failure in failures)
    return SwarmFailed(f"every agent failed ({summary})", failures[0][1])


def _rebuttal_prompt(others: Sequence[tuple[str, str]]) -> str:
    if not others:
        return "No other agent has answered yet. Review your answer, correct any mistakes and give your best answer."
    shown = "\n\n".join(f"[{name}]\n{text}" for name, text in others)
    return (
        f"Other agents answered the same question:\n\n{shown}\n\n"
        "Consider their answers: keep what is right, correct what is wrong, and give your best complete answer."
    )


def _synthesis_prompt(conversation: Sequence[Message], candidates: Sequence[Candidate]) -> str:
    shown = "\n\n".join(f"[{c.agent}]\n{c.text}" for c in candidates)
    return (
        f"Several agents answered this conversation:\n\n{render_conversation(conversation)}\n\n"
        f"Their answers:\n\n{shown}\n\n"
        "Write one final answer that combines their best points and corrects their mistakes. "
        "Reply with the answer only."
    )


def _user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


def _system(text: str) -> Message:
    return Message(Role.SYSTEM, (TextPart(text),))
