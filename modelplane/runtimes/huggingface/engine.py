"""The generation engine: one thread that runs every sequence of a model, batched step by step.

Each turn of its loop it takes the sequences that arrived, drops those whose client left, runs the
prompts of newcomers together (up to `max_num_seqs` sequences in all) and then one decoding step for
every running sequence: one forward pass, whatever the number of requests. A sequence joins at the
next step boundary and leaves as soon as it ends, so a long generation never holds up a short one,
and throughput grows with concurrency instead of requests queueing one behind another.

The event loop hands sequences over with `submit` and gets each step back on the sequence's own
asyncio queue; the steps of one turn reach the loop in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch

from modelplane.protocol.errors import ModelNotReady
from modelplane.protocol.openai import SamplingParams
from modelplane.runtimes.huggingface.batch import DecoderOnlyBatch
from modelplane.runtimes.huggingface.detokenizer import IncrementalText
from modelplane.runtimes.huggingface.metrics import EngineMetrics
from modelplane.runtimes.huggingface.sampling import Choice, Sampler, choose, prompt_choices
from modelplane.runtimes.huggingface.token_bytes import TokenBytes
from modelplane.server.generation import EngineLoad, GenerationStep, TokenLogprob

logger = logging.getLogger("modelplane.server")

PREFILL_TOKENS = 8192  # padded prompt tokens per prefill pass; more newcomers wait for the next one


@dataclass(eq=False)
class Sequence:
    """One generation: its prompt, how to sample it, and where its steps go."""

    prompt_ids: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    steps: asyncio.Queue
    cancelled: bool = False
    ending: str = "abandoned"  # how a cancelled sequence counts: its client left, or its caller stopped it
    generated: int = 0
    sampler: Sampler | None = None
    text: IncrementalText | None = None
    end_ids: frozenset[int] = frozenset()  # the tokens that end it
    prompt_logprobs: list[TokenLogprob] | None = None  # when its params ask, sent with its first step


class GenerationEngine:
    def __init__(
        self,
        name: str,
        batch: DecoderOnlyBatch,
        tokenizer: Any,
        eos_ids: set[int],
        max_num_seqs: int,
        vocab_size: int,
        metrics: EngineMetrics,
    ):
        self.name = name
        self.batch = batch
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.max_num_seqs = max_num_seqs
        self.vocab_size = vocab_size
        self.metrics = metrics
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._admitting: list[Sequence] = []  # taken off the waiting line, not yet running
        self._token_texts: dict[int, str] = {}
        self._token_bytes = TokenBytes(tokenizer)
        self._thread = threading.Thread(target=self._run, name="generation-engine", daemon=True)

    # -- the event loop's side ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def submit(self, sequences: list[Sequence]) -> None:
        self._inbox.put(sequences)

    def cancel(self, sequence: Sequence, ending: str = "abandoned") -> None:
        """Drops `sequence`, counted as `ending`: `abandoned` (its client left) or `stop` (a stop string
        its caller matched ended it)."""
        sequence.ending = ending
        sequence.cancelled = True
        self._inbox.put([])  # wakes the loop, which drops the sequence at its next turn

    def occupancy(self) -> EngineLoad:
        return EngineLoad(running=len(self._running), waiting=len(self._waiting))

    # -- the engine thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while self._take(block=not self._running and not self._waiting):
                try:
                    self._turn()
                except Exception as exc:  # noqa: BLE001 - the engine's own fault: its sequences fail, it goes on
                    logger.exception("the generation engine failed")
                    self._fail(list(self._waiting) + self._admitting + self._running, exc)
                    self._waiting.clear()
                    self._admitting = []
                    self._running = []
                    self.batch.keep([])
        self._fail(list(self._waiting) + self._running, ModelNotReady(self.name, "It was unloaded."))

    def _turn(self) -> None:
        self._drop_cancelled()
        self._admit()
        if self._running:
            self._decode()

    def _take(self, *, block: bool) -> bool:
        """Moves arrived sequences to the waiting line; False once told to stop."""
        try:
            item = self._inbox.get() if block else self._inbox.get_nowait()
            while True:
                if item is None:
                    return False
                self._waiting.extend(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            return True

    def _drop_cancelled(self) -> None:
        for sequence in itertools.chain(self._waiting, self._running):
            if sequence.cancelled:
                self.metrics.ended(sequence.ending)
        waiting = deque(sequence for sequence in self._waiting if not sequence.cancelled)
        keep = [row for row, sequence in enumerate(self._running) if not sequence.cancelled]
        self._waiting = waiting
        if len(keep) < len(self._running):
            self.batch.keep(keep)
            self._running = [self._running[row] for row in keep]

    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.max_num_seqs:
            self._admitting = self._next_group(self.max_num_seqs - len(self._running))
            group = self._prepared(self._admitting)
            if group:
                self._prefill(group)
            self._admitting = []

    def _prepared(self, group: list[Sequence]) -> list[Sequence]:
        """The sequences of `group` ready to prefill; one whose sampler cannot be made fails alone."""
        ready = []
        for sequence in group:
            try:
                sequence.end_ids = self._end_ids(sequence.params)
                sequence.sampler = Sampler(
                    sequence.params, self.batch.device, self.vocab_size, sequence.prompt_ids, sequence.end_ids
                )
            except Exception as exc:  # noqa: BLE001 - its own parameters' fault, reported on its request
                logger.exception("a sequence's sampler could not be made")
                self._fail([sequence], exc)
                continue
            sequence.text = IncrementalText(self.tokenizer, sequence.prompt_ids)
            ready.append(sequence)
        return ready

    def _prefill(self, group: list[Sequence]) -> None:
        try:
            part, logits = self.batch.prefill([sequence.prompt_ids for sequence in group])
            choices = choose(logits, [sequence.sampler for sequence in group])
            for row, sequence in enumerate(group):
                if sequence.params.prompt_logprobs is not None:
                    sequence.prompt_logprobs = self._prompt_logprobs(part.prompt_logits[row], sequence)
            part.prompt_logits = None
        except Exception as exc:  # noqa: BLE001 - the model's failure, reported on each request
            logger.exception("prefill failed")
            self._fail(group, exc)
            return
        alive = self._advance(group, choices)
        part.keep(alive)
        if alive:
            part.set_next([choices[row].token for row in alive])
            self.batch.extend(part)
            self._running += [group[row] for row in alive]

    def _next_group(self, room: int) -> list[Sequence]:
        """The next newcomers to prefill together: as many as there is room for, within PREFILL_TOKENS
        padded tokens (always at least one)."""
        group: list[Sequence] = []
        longest = 0
        while self._waiting and len(group) < room:
            length = max(longest, len(self._waiting[0].prompt_ids))
            if group and length * (len(group) + 1) > PREFILL_TOKENS:
                break
            longest = length
            group.append(self._waiting.popleft())
        return group

    def _decode(self) -> None:
        try:
            logits = self.batch.decode()
            self.metrics.decoded(len(self._running))
            choices = choose(logits, [sequence.sampler for sequence in self._running])
        except Exception as exc:  # noqa: BLE001 - the model's failure, reported on each request
            logger.exception("decoding step failed")
            self._fail(self._running, exc)
            self._running = []
            self.batch.keep([])
            return
        alive = self._advance(self._running, choices)
        if len(alive) < len(self._running):
            self.batch.keep(alive)
            self._running = [self._running[row] for row in alive]
        if alive:
            self.batch.set_next([choices[row].token for row in alive])

    def _advance(self, sequences: list[Sequence], choices: list[Choice]) -> list[int]:
        """Gives each sequence its chosen token and sends the steps; the rows still generating."""
        deliveries = []
        alive = []
        for row, (sequence, choice) in enumerate(zip(sequences, choices, strict=True)):
            if choice.error is not None:
                logger.error("a sequence could not be sampled: %s", choice.error)
                deliveries.append((sequence, choice.error))
                continue
            step = self._step(sequence, choice)
            deliveries.append((sequence, step))
            if step.finish_reason is not None:
                self.metrics.ended(step.finish_reason)
            elif sequence.cancelled:
                self.metrics.ended(sequence.ending)
            else:
                alive.append(row)
        _deliver(deliveries)
        return alive

    def _end_ids(self, params: SamplingParams) -> frozenset[int]:
        """The tokens that end a sequence: its stop tokens, and end-of-sequence unless it ignores it."""
        return frozenset(params.stop_token_ids) | (frozenset() if params.ignore_eos else self.eos_ids)

    def _step(self, sequence: Sequence, choice: Choice) -> GenerationStep:
        sequence.generated += 1
        finish = stop_reason = None
        if choice.token in sequence.end_ids:
            finish = "stop"
            if sequence.params.ignore_eos or choice.token not in self.eos_ids:  # vLLM checks EOS first
                stop_reason = choice.token
        elif sequence.generated >= sequence.params.max_tokens:
            finish = "length"
        text = "" if finish == "stop" else sequence.text.add(choice.token)
        if finish:
            text += sequence.text.rest()
        logprobs = None
        if choice.logprob is not None:
            logprobs = [self._token_logprob(choice)]
        prompt_logprobs = sequence.prompt_logprobs if sequence.generated == 1 else None
        return GenerationStep([choice.token], text, logprobs, finish, prompt_logprobs, stop_reason)

    def _prompt_logprobs(self, logits: torch.Tensor, sequence: Sequence) -> list[TokenLogprob]:
        """The log probabilities of `sequence`'s prompt tokens; the first has none."""
        first = sequence.prompt_ids[0]
        return [
            TokenLogprob(self._token_text(first), None, token_bytes=self._token_bytes.of(first)),
            *(
                self._token_logprob(choice)
                for choice in prompt_choices(logits, sequence.prompt_ids, sequence.params.prompt_logprobs)
            ),
        ]

    def _token_logprob(self, choice: Choice) -> TokenLogprob:
        return TokenLogprob(
            self._token_text(choice.token),
            choice.logprob,
            tuple((self._token_text(token), logprob) for token, logprob in choice.top),
            self._token_bytes.of(choice.token),
            tuple(self._token_bytes.of(token) for token, _logprob in choice.top),
        )

    def _token_text(self, token: int) -> str:
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = self.tokenizer.decode([token])
        return text

    def _fail(self, sequences: list[Sequence], error: BaseException) -> None:
        _deliver([(sequence, error) for sequence in sequences])


def _deliver(items: list[tuple[Sequence, Any]]) -> None:
    """Puts each item on its sequence's queue, with one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for sequence, item in items:
        by_loop.setdefault(sequence.loop, []).append((sequence.steps, item))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_put_all, batch)


def _put_all(items: list[tuple[asyncio.Queue, Any]]) -> None:
    for steps, item in items:
        steps.put_nowait(item)
