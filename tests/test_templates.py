from __future__ import annotations

import json

import pytest

from raitner.errors import UnknownNameError
from raitner.prompts import TEMPLATES, default_template_id, get_template, to_sharegpt
from raitner.schema import Entity, Example


def _example(text, spans, lang="en", id="x"):
    entities = [Entity(s, e, text[s:e], label) for s, e, label in spans]
    return Example(id=id, text=text, lang=lang, entities=entities)


def test_vanilla_english_conversation_is_universalner_shaped():
    ex = _example("Barack Obama visited Paris .", [(0, 12, "person"), (21, 26, "location")])
    messages = get_template("ra-it-en-v1").training_messages(ex, ["person", "location", "date"])
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 4
    assert messages[0]["content"].startswith("A virtual assistant answers questions")
    assert messages[1]["content"] == "Text: Barack Obama visited Paris ."
    assert messages[2]["content"] == "I've read this text."
    assert messages[3]["content"] == "What describes person in the text?"
    assert json.loads(messages[4]["content"]) == ["Barack Obama"]
    assert messages[8]["content"] == "[]"


def test_ra_it_conversation_prepends_examples_turn():
    query = _example("Obama met Merkel .", [(0, 5, "person"), (10, 16, "person")], id="q")
    shot = _example("Paris is in France .", [(0, 5, "city"), (12, 18, "country")], id="s")
    template = get_template("ra-it-en-v1")
    messages = template.training_messages(query, ["person"], [shot, shot])
    assert messages[1]["role"] == "user"
    assert messages[1]["content"] == (
        "Here are some examples of named entity recognition:\n"
        "Text: Paris is in France .\nEntity: [{'Paris': 'city'}, {'France': 'country'}]\n"
        "Text: Paris is in France .\nEntity: [{'Paris': 'city'}, {'France': 'country'}]"
    )
    assert messages[2] == {"role": "assistant", "content": "I've read these examples."}
    # Without examples the same template renders the vanilla conversation.
    assert template.training_messages(query, ["person"]) == [messages[0], *messages[3:]]


def test_answers_are_unique_mentions_in_entity_order_and_valid_json():
    text = 'He said "Hi" to Ann and Ann .'
    ex = _example(text, [(16, 19, "person"), (24, 27, "person"), (8, 12, "quote")])
    template = get_template("ra-it-en-v1")
    messages = template.training_messages(ex, ["person", "quote"])
    assert messages[-3]["content"] == '["Ann"]'
    assert json.loads(messages[-1]["content"]) == ['"Hi"']


def test_chinese_template_strings():
    ex = _example("张三在北京。", [(0, 2, "人名"), (3, 5, "地名")], lang="zh")
    template = get_template(default_template_id("zh"))
    messages = template.training_messages(ex, ["地名"], [ex])
    assert (
        messages[0]["content"] == "以下是一些命名实体识别的例子：\n"
        "文本：张三在北京。\n实体：[{'张三': '人名'}, {'北京': '地名'}]"
    )
    assert messages[1]["content"] == "我已读完这些例子。"
    assert messages[2]["content"] == "文本： 张三在北京。"
    assert messages[4]["content"] == '文本中属于"地名"的实体有哪些？'
    assert messages[5]["content"] == '["北京"]'


def test_query_messages_end_on_the_question():
    template = get_template("ra-it-en-v1")
    messages = template.query_messages("Some text .", "person")
    assert messages[-1] == {"role": "user", "content": "What describes person in the text?"}


def test_sharegpt_conversion_drops_system_and_renames_roles():
    messages = get_template("ra-it-en-v1").query_messages("t", "x")
    converted = to_sharegpt(messages)
    assert [m["from"] for m in converted] == ["human", "gpt", "human"]


def test_unknown_template_lists_known_ids():
    with pytest.raises(UnknownNameError) as err:
        get_template("nope")
    for template_id in TEMPLATES:
        assert template_id in str(err.value)
