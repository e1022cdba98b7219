"""LLM-judged faithfulness and answer relevancy, through DeepEval's metrics.

Optional (``pip install 'vistarag[judge]'``) and only with a chat model configured (the same
``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` settings the synthesizer uses):
the judge is the configured LangChain chat model wrapped as a ``DeepEvalBaseLLM``, so it works
whichever provider the user has, even when the answers under test are extractive.

- ``faithfulness``: the share of the answer's claims that the retrieved evidence supports.
- ``answer_relevancy``: the share of the answer's statements that address the question.

Both run synchronously per turn (``async_mode=False``) without the optional reason call, so a
turn costs five model calls: truths, claims, verdicts; statements, verdicts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vistarag.agent.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

JUDGE_METRICS = ("faithfulness", "answer_relevancy")
INSTALL_HINT = "install the judge extra: pip install 'vistarag[judge]'"


class JudgeUnavailable(Exception):
    """The judge cannot run here; the message says why (no model, no deepeval)."""


def _chat_model(settings: Settings) -> tuple[BaseChatModel, str]:
    """The user's hosted chat model, even when the suite's answers are extractive."""
    from vistarag.agent.llm import HOW_TO_CONFIGURE, make_chat_model

    wanted = settings.synthesizer if settings.synthesizer in ("anthropic", "openai") else "auto"
    choice = make_chat_model(settings.model_copy(update={"synthesizer": wanted}))
    if choice.model is None:
        raise JudgeUnavailable(f"the judge needs a chat model: {HOW_TO_CONFIGURE}")
    return choice.model, choice.label


class Judge:
    """Scores one turn's answer against its question and the evidence it was given."""

    def __init__(self, settings: Settings, metrics: Sequence[str] = JUDGE_METRICS) -> None:
        unknown = sorted(set(metrics) - set(JUDGE_METRICS))
        if unknown:
            raise ValueError(f"unknown judge metric(s) {unknown}; known: {list(JUDGE_METRICS)}")
        chat, self.label = _chat_model(settings)
        os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")  # nothing leaves the machine
        try:
            from deepeval.metrics import AnswerRelevancyMetric, FaithfulnessMetric
        except ImportError as exc:
            raise JudgeUnavailable(f"deepeval is not installed; {INSTALL_HINT}") from exc
        self.model = _judge_model(chat, self.label)
        builders = {"faithfulness": FaithfulnessMetric, "answer_relevancy": AnswerRelevancyMetric}
        self.metrics = {name: builders[name] for name in metrics}

    def score(self, question: str, answer: str, evidence: Sequence[str]) -> dict[str, float]:
        """Each judged metric in [0, 1] for one answer (none for an empty answer)."""
        from deepeval.test_case import LLMTestCase

        if not answer.strip():
            return {}
        case = LLMTestCase(input=question, actual_output=answer,
                           retrieval_context=[e for e in evidence if e.strip()] or [""])
        scores = {}
        for name, metric_class in self.metrics.items():  # a fresh metric: turns run in threads
            metric = metric_class(model=self.model, async_mode=False, include_reason=False)
            scores[name] = float(metric.measure(case, _show_indicator=False))
        return scores


def _judge_model(chat: BaseChatModel, label: str) -> Any:
    """The LangChain chat model as DeepEval's custom-model interface (JSON text out)."""
    from deepeval.models import DeepEvalBaseLLM

    class LangChainJudge(DeepEvalBaseLLM):
        def __init__(self) -> None:
            self.chat = chat
            super().__init__(label)

        def load_model(self) -> BaseChatModel:
            return chat

        def generate(self, prompt: str) -> str:
            return self.chat.invoke(prompt).text

        async def a_generate(self, prompt: str) -> str:
            return (await self.chat.ainvoke(prompt)).text

        def get_model_name(self) -> str:
            return label

    return LangChainJudge()
