"""Inference plumbing: lenient parsing, alignment, chunking, backends and the predictor.

The tiny models are random, so their answers are gibberish: what is tested is that answers go
through parse → align → merge correctly (with scripted backends), that long texts are covered,
and that the HF backend is deterministic, batch-independent and sends the template's prompts.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raitner.infer.align import align_mentions, flatten, remove_subsumed
from raitner.infer.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    Window,
    approximate_token_spans,
    merge_window_entities,
    split_text,
)
from raitner.infer.parse import AnswerStatus, parse_mentions
from raitner.infer.predictor import Predictor, load_pool
from raitner.prompts.templates import Template, get_template
from raitner.schema import Entity, Example

EN = get_template("ra-it-en-v1")
ZH = get_template("ra-it-zh-v1")

OK, REPAIRED, UNPARSEABLE = AnswerStatus.OK, AnswerStatus.REPAIRED, AnswerStatus.UNPARSEABLE


# --------------------------------------------------------------------------- parse


@pytest.mark.parametrize(
    ("answer", "mentions", "status"),
    [
        ('["Barack Obama", "Paris"]', ("Barack Obama", "Paris"), OK),
        ("  []\n", (), OK),
        ('["a", "b", "a"]', ("a", "b"), OK),
        ('["张三", "北京"]', ("张三", "北京"), OK),
        ('["a\\"b", "c\\\\d", "\\u00e9"]', ('a"b', "c\\d", "é"), OK),
        ('["a]b"]', ("a]b",), OK),
        ('["", " "]', ("", " "), OK),
        ('Answer: ["Paris"] and more', ("Paris",), REPAIRED),
        ('["Paris", "Lon', ("Paris",), REPAIRED),
        ('["Paris", "London", "Ber', ("Paris", "London"), REPAIRED),
        ('["Paris", "Lo\\', ("Paris",), REPAIRED),
        ("['Paris', 'London']", ("Paris", "London"), REPAIRED),
        ("['McDonald\\'s']", ("McDonald's",), REPAIRED),
        ('["Paris", "London",]', ("Paris", "London"), REPAIRED),
        ('["Paris",, "London"]', ("Paris", "London"), REPAIRED),
        ('```json\n["Paris"]\n```', ("Paris",), REPAIRED),
        ('```\n["Paris", "Paris"]\n```', ("Paris",), REPAIRED),
        ("[Paris, New York]", ("Paris", "New York"), REPAIRED),
        # items that lost their opening quote (seen from SmolLM2 in long lists)
        (
            '["Werbos", Williams", Sepp Hochreiter"]',
            ("Werbos", "Williams", "Sepp Hochreiter"),
            REPAIRED,
        ),
        ('["a", say "hi"]', ("a", 'say "hi"'), REPAIRED),  # two quotes: left as it is
        ("[Guns N' Roses, Boot Scootin']", ("Guns N' Roses", "Boot Scootin'"), REPAIRED),
        ("[2009, null, true]", ("2009",), REPAIRED),
        ('[["Paris"], "London"]', ("Paris", "London"), REPAIRED),
        ("[{'Paris': 'city'}, {'France': 'country'}]", ("Paris", "France"), REPAIRED),
        ('see [1] then ["Paris"]', ("Paris",), REPAIRED),
        ('["Paris", "[1]', ("Paris",), REPAIRED),
        ('["a"] ["b"]', ("a",), REPAIRED),
        ("Answer: []", (), REPAIRED),
        ("", (), UNPARSEABLE),
        ("There are no entities.", (), UNPARSEABLE),
        ("[", (), UNPARSEABLE),
        ('["', (), UNPARSEABLE),
        ('["unfinished', (), UNPARSEABLE),
        ('{"Paris": "city"}', (), UNPARSEABLE),
        ('"Paris"', (), UNPARSEABLE),
    ],
)
def test_parse_mentions(answer: str, mentions: tuple[str, ...], status: AnswerStatus) -> None:
    parsed = parse_mentions(answer)
    assert parsed.mentions == mentions
    assert parsed.status is status


def test_parse_agrees_with_render_answer() -> None:
    for mentions in (["a"], ['say "hi"', "back\\slash", "tab\there"], ["北京", "《红楼梦》"], []):
        parsed = parse_mentions(EN.render_answer(mentions))
        assert parsed.status is OK
        assert list(parsed.mentions) == mentions


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_mentions(None)  # type: ignore[arg-type]


def test_parse_survives_random_garbage() -> None:
    rng = random.Random(0)
    alphabet = "[]{}\"',:\\ \nab张"
    for _ in range(2000):
        answer = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        parsed = parse_mentions(answer)
        assert all(isinstance(m, str) for m in parsed.mentions)
        assert len(set(parsed.mentions)) == len(parsed.mentions)
        assert parsed.status is not UNPARSEABLE or not parsed.mentions


# --------------------------------------------------------------------------- align


def spans(alignment) -> list[tuple[int, int, str, str]]:
    return [(e.start, e.end, e.text, e.label) for e in alignment.entities]


def test_align_exact_every_occurrence() -> None:
    text = "Paris is big. I love Paris."
    result = align_mentions(text, [("Paris", "city")])
    assert spans(result) == [(0, 5, "Paris", "city"), (21, 26, "Paris", "city")]
    assert result.unaligned == [] and result.subsumed == []


def test_align_exact_tier_wins_over_case_insensitive() -> None:
    text = "New York and new york"
    assert spans(align_mentions(text, [("New York", "loc")])) == [(0, 8, "New York", "loc")]
    lowered = align_mentions(text, [("NEW YORK", "loc")])
    assert spans(lowered) == [(0, 8, "New York", "loc"), (13, 21, "new york", "loc")]


def test_align_whitespace_variants() -> None:
    text = "He met Barack\n  Obama in the U.S . yesterday"
    result = align_mentions(text, [("Barack Obama", "person"), ("U.S.", "loc")])
    assert spans(result) == [
        (7, 21, "Barack\n  Obama", "person"),
        (29, 34, "U.S .", "loc"),
    ]
    assert align_mentions("张 三在北京", [("张三", "人名")]).entities[0].text == "张 三"


def test_align_strips_mentions_and_keeps_text_characters() -> None:
    result = align_mentions("Visit PARIS now", [("  paris ", "city")])
    assert spans(result) == [(6, 11, "PARIS", "city")]


def test_align_prefers_word_boundaries() -> None:
    result = align_mentions("R and Rserve and R.", [("R", "language")])
    assert [(e.start, e.end) for e in result.entities] == [(0, 1), (17, 18)]
    inside_only = align_mentions("Rserve", [("R", "language")])
    assert [(e.start, e.end) for e in inside_only.entities] == [(0, 1)]


def test_align_reports_what_it_cannot_find() -> None:
    text = "Short text."
    pairs = [
        ("Berlin", "city"),
        ("", "city"),
        ("   ", "city"),
        ("Short text. And much more than the text", "misc"),
        (".*", "misc"),
        ("text", "misc"),
    ]
    result = align_mentions(text, pairs)
    assert spans(result) == [(6, 10, "text", "misc")]
    assert result.unaligned == [
        ("Berlin", "city"),
        ("", "city"),
        ("   ", "city"),
        ("Short text. And much more than the text", "misc"),
        (".*", "misc"),
    ]


def test_align_regex_metacharacters_are_literal() -> None:
    text = "C++ (v2.0) costs $5 [beta] a|b"
    pairs = [(m, "x") for m in ("C++", "(v2.0)", "$5", "[beta]", "a|b", "v2?0")]
    result = align_mentions(text, pairs)
    assert [e.text for e in result.entities] == ["C++", "(v2.0)", "$5", "[beta]", "a|b"]
    assert result.unaligned == [("v2?0", "x")]


def test_align_nested_same_type_is_subsumed_other_types_kept() -> None:
    text = "The New York Times is in New York."
    pairs = [
        ("York", "loc"),
        ("New York", "loc"),
        ("New York Times", "org"),
        ("New York Times", "loc"),
    ]
    result = align_mentions(text, pairs)
    assert spans(result) == [
        (4, 18, "New York Times", "loc"),
        (4, 18, "New York Times", "org"),
        (25, 33, "New York", "loc"),
    ]
    assert result.subsumed == [("York", "loc")]
    assert result.unaligned == []


def test_align_overlapping_mentions_both_kept() -> None:
    result = align_mentions("New York Times", [("New York", "org"), ("York Times", "org")])
    assert [(e.start, e.end) for e in result.entities] == [(0, 8), (4, 14)]
    assert flatten(result.entities) == [Entity(4, 14, "York Times", "org")]


def test_align_repeated_pattern_and_duplicates() -> None:
    result = align_mentions("aaaa", [("aa", "x"), ("aa", "x"), ("AA", "x")])
    assert [(e.start, e.end) for e in result.entities] == [(0, 2), (2, 4)]


def test_align_chinese() -> None:
    text = "张三在北京工作，李四也在北京。"
    result = align_mentions(text, [("北京", "地点"), ("张三", "人名"), ("王五", "人名")])
    assert spans(result) == [
        (0, 2, "张三", "人名"),
        (3, 5, "北京", "地点"),
        (12, 14, "北京", "地点"),
    ]
    assert result.unaligned == [("王五", "人名")]


def test_align_entities_always_match_the_text() -> None:
    rng = random.Random(1)
    text = "Alpha beta. GAMMA delta\n\nepsilon 北京 zeta (eta) alpha"
    for _ in range(300):
        start = rng.randrange(len(text))
        mention = text[start : start + rng.randint(0, 12)]
        if rng.random() < 0.3:
            mention = mention.upper()
        if rng.random() < 0.3:
            mention = " ".join(mention.split())
        result = align_mentions(text, [(mention, "x")])
        for entity in result.entities:
            assert text[entity.start : entity.end] == entity.text
        assert bool(result.entities) + bool(result.unaligned) + bool(result.subsumed) == 1


def test_remove_subsumed_and_flatten() -> None:
    entities = [
        Entity(0, 3, "New", "loc"),
        Entity(0, 8, "New York", "loc"),
        Entity(0, 8, "New York", "loc"),
        Entity(4, 8, "York", "org"),
    ]
    assert remove_subsumed(entities) == [
        Entity(0, 8, "New York", "loc"),
        Entity(4, 8, "York", "org"),
    ]
    assert flatten(entities) == [Entity(0, 8, "New York", "loc")]


# --------------------------------------------------------------------------- chunking


def random_text(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    words = ["alpha", "Beta", "gamma.", "delta,", "Paris", "x", "(eps)", "zeta!\n", "北京", "。"]
    return " ".join(rng.choice(words) for _ in range(n_words))


def check_windows(text: str, windows: list[Window], max_tokens: int, spans_of) -> None:
    assert windows[0].start == 0
    assert windows[-1].end == len(text)
    starts = [start for start, _ in spans_of(text)]
    for window in windows:
        assert window.text == text[window.start : window.end]
        assert window.start < window.end or len(text) == 0
        n_tokens = sum(window.start <= s < window.end for s in starts)
        assert n_tokens <= max_tokens
    for previous, following in zip(windows, windows[1:], strict=False):
        assert previous.start < following.start <= previous.end < following.end


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("max_tokens", "overlap"), [(40, 8), (13, 0), (7, 6), (1, 0)])
def test_windows_cover_text_within_budget(seed: int, max_tokens: int, overlap: int) -> None:
    text = random_text(seed, 150)
    windows = split_text(text, max_tokens=max_tokens, overlap_tokens=overlap)
    assert len(windows) > 1
    check_windows(text, windows, max_tokens, approximate_token_spans)


def test_windows_with_tokens_sharing_a_start() -> None:
    """Byte-level tokenizers give the bytes of one character the same span."""

    def byte_like_spans(text: str) -> list[tuple[int, int]]:
        spans = []
        for start, end in approximate_token_spans(text):
            spans += [(start, end)] * (2 if text[start] in "北京" else 1)
        return spans

    for seed in range(5):
        text = random_text(seed, 200)
        for max_tokens, overlap in ((2, 1), (9, 8), (20, 5)):
            windows = split_text(
                text, max_tokens=max_tokens, overlap_tokens=overlap, token_spans=byte_like_spans
            )
            check_windows(text, windows, max_tokens, byte_like_spans)


def test_windows_without_whitespace_or_punctuation() -> None:
    text = "北京张三李四王五" * 100
    windows = split_text(text, max_tokens=50, overlap_tokens=10)
    check_windows(text, windows, 50, approximate_token_spans)
    assert all(len(w.text) == 50 for w in windows[:-1])
    assert windows[1].start == 40


def test_windows_end_on_sentences_then_whitespace() -> None:
    sentence = "One two three four five six seven eight nine. "
    text = sentence * 20
    windows = split_text(text, max_tokens=30, overlap_tokens=5)
    for window in windows[:-1]:
        assert window.text.endswith(".")
    no_stops = "word " * 200
    for window in split_text(no_stops, max_tokens=30, overlap_tokens=5)[:-1]:
        assert window.text.endswith("word")
        assert no_stops[window.start - 1 : window.start] in ("", " ")


def test_windows_next_starts_on_a_word() -> None:
    text = random_text(3, 300)
    for window in split_text(text, max_tokens=20, overlap_tokens=6)[1:]:
        assert text[window.start - 1].isspace() or not text[window.start].isalpha()


def test_short_text_and_disabled_chunking() -> None:
    assert split_text("Paris.", max_tokens=5, overlap_tokens=1) == [Window(0, 6, "Paris.")]
    assert split_text("") == [Window(0, 0, "")]
    long = random_text(0, 2000)
    assert split_text(long, max_tokens=None) == [Window(0, len(long), long)]
    assert len(split_text(long)) > 1
    assert (DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS) == (256, 32)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_split_rejects_bad_budgets(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        split_text("a b c", max_tokens=max_tokens, overlap_tokens=overlap)
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    with pytest.raises(ValueError):
        Predictor(backend, EN, max_text_tokens=max_tokens, overlap_tokens=overlap)


def test_windows_with_a_real_tokenizer(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    def token_spans(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in encoded["offset_mapping"]]

    for text in (random_text(7, 400), "张三在北京工作。" * 80):
        windows = split_text(text, max_tokens=64, overlap_tokens=16, token_spans=token_spans)
        assert len(windows) > 1
        check_windows(text, windows, 64, token_spans)


def test_merge_shifts_and_deduplicates() -> None:
    text = "Paris and New York. New York and Paris."
    windows = [Window(0, 23, text[:23]), Window(10, len(text), text[10:])]
    first = align_mentions(windows[0].text, [("Paris", "loc"), ("New York", "loc"), ("New", "x")])
    second = align_mentions(windows[1].text, [("New York", "loc"), ("Paris", "loc")])
    second.entities.append(Entity(10, 13, "New", "x"))
    merged = merge_window_entities(windows, [first.entities, second.entities])
    assert [(e.start, e.end, e.label) for e in merged] == [
        (0, 5, "loc"),
        (10, 13, "x"),
        (10, 18, "loc"),
        (20, 23, "x"),
        (20, 28, "loc"),
        (33, 38, "loc"),
    ]
    for entity in merged:
        assert text[entity.start : entity.end] == entity.text


def test_merge_drops_a_cut_mention_seen_whole_elsewhere() -> None:
    text = "we went to New York today"
    windows = [Window(0, 14, text[:14]), Window(11, len(text), text[11:])]
    merged = merge_window_entities(
        windows,
        [[Entity(11, 14, "New", "loc")], [Entity(0, 8, "New York", "loc")]],
    )
    assert merged == [Entity(11, 19, "New York", "loc")]


# --------------------------------------------------------------------------- predictor


def split_query(template: Template, messages: list[dict[str, str]]) -> tuple[str, str]:
    """(text, label) of a query conversation built by ``template``."""
    text_prefix = template.text_turn.split("{text}")[0]
    q_prefix, q_suffix = template.question.split("{label}")
    text = messages[-3]["content"][len(text_prefix) :]
    question = messages[-1]["content"]
    return text, question[len(q_prefix) : len(question) - len(q_suffix)]


class ScriptedBackend:
    """Answers with ``script(text, label)`` and records every call."""

    def __init__(self, template: Template, script) -> None:
        self.template = template
        self.script = script
        self.calls: list[list[list[dict[str, str]]]] = []
        self.max_new_tokens: list[int] = []

    def generate(self, conversations, max_new_tokens):
        self.calls.append([list(c) for c in conversations])
        self.max_new_tokens.append(max_new_tokens)
        return [self.script(*split_query(self.template, list(c))) for c in conversations]


def test_predictor_parse_align_merge() -> None:
    answers = {
        "person": '["Barack Obama", "Michelle Obama", "Barack Obama"]',
        "location": "Sure: ['paris', 'White House',]",
        "date": "no idea",
    }
    backend = ScriptedBackend(EN, lambda text, label: answers[label])
    predictor = Predictor(backend, EN, show_progress=False)
    text = "Barack Obama flew from Paris to the White House. Paris again."
    [prediction] = predictor.predict([text], ["person", "location", "date"])
    assert prediction.to_dicts() == [
        {"start": 0, "end": 12, "text": "Barack Obama", "label": "person"},
        {"start": 23, "end": 28, "text": "Paris", "label": "location"},
        {"start": 36, "end": 47, "text": "White House", "label": "location"},
        {"start": 49, "end": 54, "text": "Paris", "label": "location"},
    ]
    assert prediction.unaligned == [("Michelle Obama", "person")]
    assert [a.status for a in prediction.answers] == [OK, REPAIRED, UNPARSEABLE]
    assert prediction.raw_answers() == answers
    assert not prediction.chunked


def test_predictor_sends_the_templates_prompts_in_batches() -> None:
    backend = ScriptedBackend(ZH, lambda text, label: "[]")
    predictor = Predictor(backend, ZH, batch_size=4, max_new_tokens=7, show_progress=False)
    texts = ["张三在北京工作。", "李四去了上海。", "王五。"]
    labels = ["人名", "地点"]
    predictor.predict(texts, labels)
    sent = [conversation for call in backend.calls for conversation in call]
    assert sent == [ZH.query_messages(text, label) for text in texts for label in labels]
    assert [len(call) for call in backend.calls] == [4, 2]
    assert backend.max_new_tokens == [7, 7]
    assert predictor.conversations(texts, labels) == sent


def test_predictor_given_examples_and_labels_per_text() -> None:
    backend = ScriptedBackend(EN, lambda text, label: "[]")
    predictor = Predictor(backend, EN, show_progress=False)
    shot = Example("s1", "Tokyo is big.", "en", [Entity(0, 5, "Tokyo", "city")])
    other = Example("s2", "Anna sings.", "en", [Entity(0, 4, "Anna", "person")])
    predictions = predictor.predict(
        ["A b.", "C d."], [["city"], ["person", "city"]], examples=[[shot], [other, shot]]
    )
    sent = [conversation for call in backend.calls for conversation in call]
    assert sent == [
        EN.query_messages("A b.", "city", [shot]),
        EN.query_messages("C d.", "person", [other, shot]),
        EN.query_messages("C d.", "city", [other, shot]),
    ]
    assert predictions[1].answers[0].example_ids == ("s2", "s1")
    backend.calls.clear()
    predictor.predict(["A b.", "C d."], ["city"], examples=[shot])
    assert [c[-5]["content"] for call in backend.calls for c in call] == [
        EN.render_examples([shot])
    ] * 2


def test_predictor_rejects_bad_arguments() -> None:
    predictor = Predictor(ScriptedBackend(EN, lambda t, lab: "[]"), EN, show_progress=False)
    with pytest.raises(ValueError, match="pool"):
        predictor.predict(["a"], ["x"], examples="pool")
    with pytest.raises(ValueError):
        predictor.predict(["a"], ["x"], examples="nearest")
    with pytest.raises(ValueError):
        predictor.predict(["a", "b"], ["x"], examples=[[], [], []])
    with pytest.raises(ValueError):
        predictor.predict(["a", "b"], [["x"]])
    with pytest.raises(ValueError):
        predictor.predict(["a"], ["x", " "])
    with pytest.raises(TypeError):
        predictor.predict("a", ["x"])  # type: ignore[arg-type]
    assert predictor.predict([], ["x"]) == []
    assert predictor.predict(["a"], [])[0].entities == []


def test_predictor_checks_the_backend_answer_count() -> None:
    class Short:
        def generate(self, conversations, max_new_tokens):
            return ["[]"]

    with pytest.raises(RuntimeError):
        Predictor(Short(), EN, show_progress=False).predict(["a"], ["x", "y"])


def mention_everything(words: tuple[str, ...]):
    """A scripted model that answers every listed word present in the text it was given."""

    def script(text: str, label: str) -> str:
        return EN.render_answer([w for w in words if re.search(rf"\b{w}\b", text)])

    return script


def test_predictor_long_text_is_chunked_and_fully_covered() -> None:
    text = random_text(11, 1500)
    backend = ScriptedBackend(EN, mention_everything(("Paris", "alpha")))
    predictor = Predictor(backend, EN, max_text_tokens=60, overlap_tokens=12, show_progress=False)
    [prediction] = predictor.predict([text], ["city", "letter"])
    assert prediction.chunked
    check_windows(text, prediction.windows, 60, approximate_token_spans)
    expected = sorted(
        {(m.start(), m.end(), "Paris") for m in re.finditer(r"\bParis\b", text)}
        | {(m.start(), m.end(), "alpha") for m in re.finditer(r"\balpha\b", text)}
    )
    for label in ("city", "letter"):
        found = sorted((e.start, e.end, e.text) for e in prediction.entities if e.label == label)
        assert found == expected
    assert len(prediction.answers) == 2 * len(prediction.windows)
    sent = [c for call in backend.calls for c in call]
    assert [split_query(EN, c)[0] for c in sent[::2]] == [w.text for w in prediction.windows]
    with pytest.raises(ValueError):
        prediction.raw_answers()
    combined = prediction.raw_answers(EN)
    assert parse_mentions(combined["city"]).mentions == ("Paris", "alpha")


def test_predictor_without_chunking_sends_the_whole_text() -> None:
    text = random_text(12, 1500)
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    Predictor(backend, EN, max_text_tokens=None, show_progress=False).predict([text], ["x"])
    assert split_query(EN, backend.calls[0][0])[0] == text


def make_pool() -> list[Example]:
    rows = [
        ("p1", "Paris is the capital of France.", [(0, 5, "Paris", "city")]),
        ("p2", "Berlin is the capital of Germany.", [(0, 6, "Berlin", "city")]),
        ("p3", "Angela Merkel met Emmanuel Macron.", [(0, 13, "Angela Merkel", "person")]),
        ("p4", "The cat sat on the mat.", []),
    ]
    return [
        Example(i, text, "en", [Entity(s, e, m, lab) for s, e, m, lab in ents])
        for i, text, ents in rows
    ]


def test_predictor_retrieves_from_a_pool(tmp_path: Path) -> None:
    from raitner.io.jsonl import write_examples
    from raitner.retrieval import HashingEmbedder, RetrievalConfig, retrieve

    pool = make_pool()
    path = tmp_path / "pool.jsonl"
    write_examples(path, pool)
    assert [e.id for e in load_pool(path)] == [e.id for e in pool]
    config = RetrievalConfig(strategy="nn", k=2)
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    predictor = Predictor(
        backend, EN, pool=path, retrieval=config, embedder=HashingEmbedder(), show_progress=False
    )
    texts = ["Rome is the capital of Italy.", "Olaf Scholz met Joe Biden."]
    predictions = predictor.predict(texts, ["city", "person"], examples="pool")
    queries = [Example(f"q{i}", t, "en") for i, t in enumerate(texts)]
    expected = retrieve(queries, pool, config, HashingEmbedder(), exclude_self=False)
    by_id = {e.id: e for e in pool}
    sent = [c for call in backend.calls for c in call]
    assert sent == [
        EN.query_messages(text, label, [by_id[i] for i in found.example_ids])
        for text, found in zip(texts, expected, strict=True)
        for label in ("city", "person")
    ]
    assert predictions[0].answers[0].example_ids == tuple(expected[0].example_ids)
    assert len(expected[0].example_ids) == 2


def test_predictor_encodes_the_pool_once() -> None:
    from raitner.retrieval import HashingEmbedder

    class Counting(HashingEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.encoded: list[str] = []

        def encode(self, texts, **kwargs):
            self.encoded.extend(texts)
            return super().encode(texts, **kwargs)

    embedder = Counting()
    pool = make_pool()
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    predictor = Predictor(backend, EN, pool=pool, embedder=embedder, show_progress=False)
    assert predictor.embedder is embedder
    predictor.predict(["Rome is big."], ["city"], examples="pool")
    predictor.predict(["Rome is big.", "Oslo too."], ["city"], examples="pool")
    pool_texts = [p.text for p in pool]
    assert sorted(t for t in embedder.encoded if t in pool_texts) == sorted(pool_texts)
    assert embedder.encoded.count("Rome is big.") == 2


def test_predictor_bm25_filter_can_drop_every_example() -> None:
    from raitner.retrieval import HashingEmbedder, RetrievalConfig

    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    predictor = Predictor(
        backend,
        EN,
        pool=make_pool(),
        retrieval={"strategy": "nn_bm25", "k": 2, "bm25_threshold": 1e9},
        embedder=HashingEmbedder(),
        show_progress=False,
    )
    assert predictor.retrieval == RetrievalConfig(strategy="nn_bm25", bm25_threshold=1e9)
    predictor.predict(["Rome is the capital of Italy."], ["city"], examples="pool")
    assert backend.calls[0] == [EN.query_messages("Rome is the capital of Italy.", "city")]


def test_predictor_random_retrieval_needs_no_embedder() -> None:
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    predictor = Predictor(
        backend, EN, pool=make_pool(), retrieval={"strategy": "random", "k": 1}, show_progress=False
    )
    [prediction] = predictor.predict(["Some text."], ["x"], examples="pool")
    assert len(prediction.answers[0].example_ids) == 1


def test_load_pool_rejects_duplicate_ids() -> None:
    pool = make_pool()
    with pytest.raises(ValueError, match="unique"):
        load_pool([*pool, pool[0]])
    with pytest.raises(TypeError):
        load_pool(["not an example"])  # type: ignore[list-item]


def test_predictor_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    backend = ScriptedBackend(EN, lambda t, lab: "[]")
    Predictor(backend, EN, show_progress=True).predict(["a", "b"], ["x"])
    assert "questions" in capsys.readouterr().err


def test_lightweight_modules_do_not_import_torch() -> None:
    code = (
        "import sys, raitner, raitner.infer, raitner.infer.parse, raitner.infer.align, "
        "raitner.infer.chunking, raitner.infer.predictor, raitner.api; "
        "raitner.OpenNER; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- HF backend


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def queries() -> list[list[dict[str, str]]]:
    texts = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。", "Paris " * 12, "x"]
    return [EN.query_messages(t, label) for t in texts for label in ("person", "location")]


def test_hf_backend_batches_equal_one_by_one(lively_model_dir: Path) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = load(lively_model_dir)
    conversations = queries()
    batched = HFBackend(model, tokenizer, batch_size=3).generate(conversations, 12)
    single = HFBackend(model, tokenizer, batch_size=1).generate(conversations, 12)
    assert batched == single
    assert len(set(batched)) > 2
    assert HFBackend(model, tokenizer).generate([], 12) == []


def test_hf_backend_renders_the_chat_template_and_decodes_new_tokens(
    lively_model_dir: Path,
) -> None:
    import torch

    from raitner.infer.backends import HFBackend

    model, tokenizer = load(lively_model_dir)
    backend = HFBackend(model, tokenizer)
    conversation = queries()[0]
    prompt = backend.render(conversation)
    assert prompt == tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("What describes person in the text?<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        output = model.generate(
            ids, max_new_tokens=10, do_sample=False, eos_token_id=backend.stop_token_ids()
        )
    expected = tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)
    assert backend.generate([conversation], 10) == [expected]


def test_hf_backend_stops_at_end_of_turn(lively_model_dir: Path) -> None:
    import torch

    from raitner.infer.backends import HFBackend

    model, tokenizer = load(lively_model_dir)
    backend = HFBackend(model, tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in backend.stop_token_ids()
    conversation = queries()[0]
    prompt_ids = tokenizer(backend.render(conversation), add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        output = model.generate(
            torch.tensor([prompt_ids]),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=backend.stop_token_ids(),
        )
    free = output[0, len(prompt_ids) :].tolist()
    stop_at = next(k for k in range(2, len(free) - 1) if free[k] not in free[:k])
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, free[stop_at]]
    [reply] = backend.generate([conversation], 12)
    assert reply == tokenizer.decode(free[:stop_at], skip_special_tokens=True)


def test_hf_backend_token_spans(tiny_model_dir: Path) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = load(tiny_model_dir)
    text = "Barack Obama visited 北京."
    found = HFBackend(model, tokenizer).token_spans(text)
    assert found[0][0] == 0 and found[-1][1] == len(text)
    assert all(a[1] <= b[1] for a, b in zip(found, found[1:], strict=False))
    with pytest.raises(ValueError):
        HFBackend(model, tokenizer, batch_size=0)


def test_predictor_with_hf_backend_is_batch_independent(lively_model_dir: Path) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = load(lively_model_dir)
    texts = ["Barack Obama visited Paris in 2009 .", "Paris Paris Paris", random_text(5, 120)]
    labels = ["person", "location", "date"]

    def run(batch_size: int):
        backend = HFBackend(model, tokenizer, batch_size=batch_size)
        predictor = Predictor(
            backend,
            EN,
            max_new_tokens=10,
            max_text_tokens=48,
            overlap_tokens=8,
            show_progress=False,
        )
        return predictor.predict(texts, labels, batch_size=batch_size)

    together, alone = run(8), run(1)
    assert [p.answers for p in together] == [p.answers for p in alone]
    assert [p.entities for p in together] == [p.entities for p in alone]
    assert together[2].chunked
    for text, prediction in zip(texts, together, strict=True):
        for entity in prediction.entities:
            assert text[entity.start : entity.end] == entity.text
