"""Several models answer every question; a mention is kept when enough of them answer it.

Models fine-tuned alike but from different seeds make different mistakes more often than the
same ones: a mention that only one of them answers is more often wrong than one they agree on.
:class:`VotingBackend` asks each member backend the same questions and answers each with the
JSON list of the mentions that at least ``min_votes`` members gave (default: more than half;
with two members, both). The price is one pass of every member over the questions.

Mentions are compared as the list metric compares them (:func:`raitner.evaluate.metrics.
normalize_answer`: case, ASCII punctuation, articles), so ``"The Beatles"`` and ``"beatles"``
are one vote. Each answer is read leniently (:func:`raitner.infer.parse.parse_mentions`, as
the predictor reads answers); an answer with no list votes for nothing. The voted list keeps
the order in which the members gave the mentions (the first member's first), each mention in
the surface form of the first member that answered it, so that it can be found in the text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from raitner.evaluate.metrics import normalize_answer
from raitner.infer.parse import parse_mentions
from raitner.prompts.templates import Message

__all__ = ["VotingBackend", "majority", "vote_answers"]


def majority(members: int) -> int:
    """The smallest number of votes that is more than half of ``members``."""
    return members // 2 + 1


def _json_list(mentions: Sequence[str]) -> str:
    return json.dumps(list(mentions), ensure_ascii=False)


def vote_answers(
    answers: Sequence[str],
    min_votes: int,
    render_answer: Callable[[Sequence[str]], str] = _json_list,
) -> str:
    """The answer (``render_answer`` of a mention list) holding the mentions that at least
    ``min_votes`` of ``answers`` give; each answer votes at most once for a mention."""
    if not 1 <= min_votes <= len(answers):
        raise ValueError(f"min_votes must be between 1 and {len(answers)}, got {min_votes}")
    votes: Counter[str] = Counter()
    surface: dict[str, str] = {}  # each mention as the first answer to give it wrote it
    for answer in answers:
        keys: dict[str, None] = {}
        for mention in parse_mentions(answer).mentions:
            key = normalize_answer(mention)
            keys[key] = None
            surface.setdefault(key, mention)
        votes.update(list(keys))  # one vote per answer, in the answer's order
    return render_answer([surface[key] for key, count in votes.items() if count >= min_votes])


class VotingBackend:
    """A :class:`~raitner.infer.backends.GenerationBackend` whose reply to a question is the
    vote of its ``members`` (backends) over their own replies (:func:`vote_answers`).

    Every member gets the same conversations; their templates must agree (the conversations
    are rendered once, by the predictor). ``min_votes`` defaults to :func:`majority`.
    The token spans used to split long texts, the empty-answer bias and the reply ending
    reported are the first member's (a loader gives all members the same decoding).
    """

    def __init__(
        self,
        members: Sequence[Any],
        *,
        min_votes: int | None = None,
        render_answer: Callable[[Sequence[str]], str] = _json_list,
    ) -> None:
        self.members = list(members)
        if len(self.members) < 2:
            raise ValueError(f"a vote needs at least two members, got {len(self.members)}")
        self.min_votes = majority(len(self.members)) if min_votes is None else min_votes
        if isinstance(self.min_votes, bool) or not 1 <= self.min_votes <= len(self.members):
            raise ValueError(
                f"min_votes must be between 1 and {len(self.members)} (the members), "
                f"got {self.min_votes!r}"
            )
        self.render_answer = render_answer
        #: each member's replies to the last block generated, member by member (for inspection)
        self.last_member_replies: list[list[str]] = []

    @property
    def token_spans(self) -> Any:
        return getattr(self.members[0], "token_spans", None)

    @property
    def empty_bias(self) -> float:
        return float(getattr(self.members[0], "empty_bias", 0.0))

    @property
    def reply_ending(self) -> Any:
        return getattr(self.members[0], "reply_ending", None)

    def generate(
        self, conversations: Sequence[Sequence[Message]], max_new_tokens: int
    ) -> list[str]:
        replies = []
        for index, member in enumerate(self.members):
            answered = member.generate(conversations, max_new_tokens)
            if len(answered) != len(conversations):
                raise RuntimeError(
                    f"vote member {index} returned {len(answered)} answers for "
                    f"{len(conversations)} questions"
                )
            replies.append(list(answered))
        self.last_member_replies = replies
        return [
            vote_answers(answers, self.min_votes, self.render_answer)
            for answers in zip(*replies, strict=True)
        ]

    def with_constrained(self, constrained: bool) -> VotingBackend:
        """The same vote over the members decoding with or without the JSON-list constraint
        (:func:`raitner.infer.select.with_constrained`), sharing their models."""
        from raitner.infer.select import with_constrained

        return VotingBackend(
            [with_constrained(member, constrained) for member in self.members],
            min_votes=self.min_votes,
            render_answer=self.render_answer,
        )
