"""Our templates regenerate the RA-IT authors' published Boson test conversations.

``zh/ra_it_reference`` holds the authors' in-domain RAG test file for Boson
(``test_w_NN_2_train_8_random_42…``): each test text is prepended with its 2 nearest examples
from an 8-example pool, which is the first 8 ids of their ``train_32_random_42`` sample; the
neighbour ranking is in their ``test_simexample_ids_8_train_32_random_42…`` file (ranked over
the 32-example pool, so restricting it to the 8-pool keeps the order). We rebuild every
conversation from those ids with ``ra-it-zh-v1`` and compare the text exactly.
"""

from __future__ import annotations

import json

import pytest

from raitner.io.registry import get_benchmark, load_benchmark
from raitner.prompts import get_template, to_sharegpt

REFERENCE = "zh/ra_it_reference/data"
RAG_FILE = (
    "benchmark_it_data_rag/boson/indomain/test_w_NN_2_train_8_random_42_GTElargeEmb_text.json"
)
IDS_FILE = (
    "benchmark_data_rag/boson/sim_examp_ids_from_sampled_train/"
    "test_simexample_ids_8_train_32_random_42_GTElargeEmb_text.jsonl"
)
POOL_FILE = "benchmark_data_rag/boson/sampled_train/train_32_random_42.jsonl"
VANILLA_FILE = "benchmark_it_data/boson/test.json"


def _jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def boson(data_root):
    test = {ex.id: ex for ex in load_benchmark("boson", "test", data_root)}
    train = {ex.id: ex for ex in load_benchmark("boson", "train", data_root)}
    return test, train


def test_rag_conversations_match_the_authors_file(data_root, boson):
    test, train = boson
    reference = data_root / REFERENCE
    published = json.loads((reference / RAG_FILE).read_text(encoding="utf-8"))
    pool = [row["id"] for row in _jsonl(reference / POOL_FILE)][:8]
    ranked = {row["id"]: row["top_8_similar_examples"] for row in _jsonl(reference / IDS_FILE)}
    template = get_template("ra-it-zh-v1")
    types = get_benchmark("boson").types

    compared = skipped = 0
    for position, record in enumerate(published):
        doc_id = record["id"]
        neighbours = [i for i in ranked[doc_id] if i in pool][:2]
        if len(neighbours) < 2:
            # The 32-pool top-8 list holds fewer than 2 members of the 8-pool for this text,
            # so the authors' ranking within the 8-pool is not recoverable from their files.
            skipped += 1
            continue
        query = test[f"boson.test:{doc_id}"]
        examples = [train[f"boson.train:{i}"] for i in neighbours]
        label = types[position % len(types)]
        messages = template.query_messages(query.text, label, examples)
        messages.append(
            {"role": "assistant", "content": template.render_answer(query.mentions(label))}
        )
        assert to_sharegpt(messages) == record["conversations"], f"record {position} (doc {doc_id})"
        compared += 1
    assert compared >= 0.9 * len(published), (compared, skipped)


def test_vanilla_conversations_match_the_authors_file(data_root, boson):
    test, _ = boson
    published = json.loads((data_root / REFERENCE / VANILLA_FILE).read_text(encoding="utf-8"))
    template = get_template("ra-it-zh-v1")
    types = get_benchmark("boson").types
    assert len(published) == len(test) * len(types)
    for position, record in enumerate(published):
        query = test[f"boson.test:{record['id']}"]
        label = types[position % len(types)]
        messages = template.query_messages(query.text, label)
        messages.append(
            {"role": "assistant", "content": template.render_answer(query.mentions(label))}
        )
        assert to_sharegpt(messages) == record["conversations"], f"record {position}"
