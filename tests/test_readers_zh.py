"""Chinese readers (raitner.io.zh_*) and the Chinese benchmark registry, against the real
shared data and against tiny hand-made files."""

from __future__ import annotations

import gzip
import json
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from raitner.errors import DataFormatError
from raitner.io.benchmarks_zh import BENCHMARKS, BOSON_TYPES
from raitner.io.registry import get_benchmark
from raitner.io.stats import ReadStats
from raitner.io.zh_common import iter_json_records
from raitner.io.zh_conll import char_tags, format_char_tags, read_char_tags, read_weibo
from raitner.io.zh_json import (
    boson_record,
    cluener_record,
    cmeee_record,
    read_boson,
    read_cluener,
    read_cmeee,
    read_yidu,
    yidu_record,
)
from raitner.io.zh_markup import format_markup, parse_markup, read_boson_markup
from raitner.io.zh_wordtag import read_pd1998_pos, read_word_tags
from raitner.schema import Entity, Example

BY_NAME = {b.name: b for b in BENCHMARKS}
ALL_SPLITS = [(b.name, split) for b in BENCHMARKS for split in b.splits]


@cache
def _load(root: Path, name: str, split: str) -> tuple[list[Example], ReadStats]:
    stats = ReadStats()
    return BY_NAME[name].load(split, root, stats), stats


@pytest.fixture
def load(data_root):
    return lambda name, split: _load(data_root, name, split)[0]


def spans(example: Example) -> list[tuple[int, int, str, str]]:
    return [(e.start, e.end, e.text, e.label) for e in example.entities]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ registry


def test_registry_names_and_metadata():
    assert {
        "boson", "boson_raw", "msra", "msra_bmes", "weibo", "weibo_v1", "cluener", "cmeee",
        "cmeee_v1", "yidu", "peoples_daily", "peoples_daily_pos",
    } <= set(BY_NAME)  # fmt: skip
    for benchmark in BENCHMARKS:
        assert benchmark.lang == "zh"
        assert benchmark.description and benchmark.source and benchmark.license
        assert not benchmark.zero_shot_eval
        assert all(split.size > 0 for split in benchmark.splits.values())
    assert BY_NAME["boson"].types == tuple(BOSON_TYPES.values())
    assert BY_NAME["weibo"].types == ("人名", "地名", "机构名称", "地缘政治实体")
    assert BY_NAME["msra"].types == ("人物", "地点", "机构")
    assert len(BY_NAME["cluener"].types) == 10
    assert len(BY_NAME["cmeee"].types) == 9
    assert len(BY_NAME["yidu"].types) == 6


def test_boson_types_are_the_authors_abb2labelname(data_root):
    published = json.loads((data_root / "zh/boson/abb2labelname.json").read_text(encoding="utf-8"))
    assert list(published.items()) == list(BOSON_TYPES.items())


def test_registry_is_reachable_by_name():
    assert get_benchmark("boson") is BY_NAME["boson"]
    assert get_benchmark("weibo_v1") is BY_NAME["weibo_v1"]


README_SIZES = {
    ("boson", "train"): 1637, ("boson", "dev"): 184, ("boson", "test"): 179,
    ("boson_raw", "all"): 2000,
    ("msra", "train"): 46364, ("msra", "test"): 4365, ("msra_bmes", "test"): 4365,
    ("weibo", "train"): 1350, ("weibo", "dev"): 270, ("weibo", "test"): 270,
    ("weibo_v1", "train"): 1350, ("weibo_v1", "dev"): 270, ("weibo_v1", "test"): 270,
    ("cluener", "train"): 10748, ("cluener", "dev"): 1343,
    ("cmeee", "dev"): 5000, ("cmeee_v1", "dev"): 5000,
    ("yidu", "train"): 1000, ("yidu", "test"): 379,
    ("peoples_daily", "dev"): 2318, ("peoples_daily", "test"): 4636,
}  # fmt: skip


def test_split_sizes_are_the_readme_counts():
    for (name, split), size in README_SIZES.items():
        assert BY_NAME[name].splits[split].size == size, (name, split)


@pytest.mark.parametrize(("name", "split"), ALL_SPLITS)
def test_split_loads_with_its_size_and_known_labels(data_root, name, split):
    benchmark = BY_NAME[name]
    examples, stats = _load(data_root, name, split)
    assert len(examples) == benchmark.splits[split].size == stats.examples
    assert len({x.id for x in examples}) == len(examples)
    assert all(x.id.startswith(f"{name}.{split}:") for x in examples)
    types = set(benchmark.types)
    for example in examples:
        assert example.lang == "zh"
        assert example.label_set == benchmark.types
        assert {e.label for e in example.entities} <= types, example.id
        assert example.meta["benchmark"] == name
    assert stats.entities == sum(len(x.entities) for x in examples) > 0
    assert stats.unfound_mentions == 0


# ------------------------------------------------------------------- spot checks, real data


def test_msra_word_tags(load):
    train = load("msra", "train")
    assert train[0].text.startswith("当希望工程救助的百万儿童成长起来") and not train[0].entities
    assert [(e.start, e.end, e.text) for e in train[2].entities] == [
        (3, 4, "日"), (6, 7, "京"), (27, 29, "北京"),
    ]  # fmt: skip
    assert {e.label for e in train[2].entities} == {"地点"}
    test = load("msra", "test")
    assert test[0].text == "中共中央致中国致公党十一大的贺词"
    assert spans(test[0]) == [(0, 4, "中共中央", "机构"), (5, 13, "中国致公党十一大", "机构")]


def test_msra_test_label_equals_char_bmes(load):
    words, chars = load("msra", "test"), load("msra_bmes", "test")
    assert [x.text for x in words] == [x.text for x in chars]
    assert [spans(x) for x in words] == [spans(x) for x in chars]


def test_weibo_v2_and_v1(load, data_root):
    v2 = load("weibo", "train")
    assert v2[1].text == "对，输给一个女人，的成绩。失望"
    assert spans(v2[1]) == [(6, 8, "女人", "人名")]  # PER.NOM
    test = load("weibo", "test")
    assert test[0].text == "一节课的时间真心感动了李开复感动"
    assert spans(test[0]) == [(11, 14, "李开复", "人名")]  # PER.NAM
    raw = next(read_weibo(data_root / "zh/weibo/weiboNER_2nd_conll.test"))
    assert raw.entities[0].label == "PER.NAM"
    v1 = load("weibo_v1", "train")
    assert v1[1].text == v2[1].text
    # CESU-8 emoji (6 surrogate lines) joined into 3 characters
    assert v1[131].text == "是质量又好又深\U0001f48b\U0001f46f\U0001f60d"


def test_weibo_tag_repairs_are_counted(data_root):
    stats = ReadStats()
    list(read_weibo(data_root / "zh/weibo/weiboNER_2nd_conll.train", stats=stats))
    assert stats.repaired_tags == 10


def test_peoples_daily(load):
    dev = load("peoples_daily", "dev")
    assert dev[1].text == "相比之下，青岛海牛队和广州松日队的雨中之战虽然也是0∶0，但乏善可陈。"
    assert spans(dev[1]) == [(5, 10, "青岛海牛队", "机构名"), (11, 16, "广州松日队", "机构名")]
    test = load("peoples_daily", "test")
    assert [e.text for e in test[0].entities] == ["欧", "美", "港", "台"]
    assert {e.label for e in test[0].entities} == {"地名"}


def test_peoples_daily_pos_derived_entities(load):
    by_id = {x.id.split(":", 1)[1]: x for x in load("peoples_daily_pos", "train")}
    second = by_id["19980101-01-001-002"]
    assert second.text == "中共中央总书记、国家主席江泽民"
    assert spans(second) == [(0, 4, "中共中央", "机构名"), (12, 15, "江泽民", "人名")]
    sixth = by_id["19980101-01-001-006"]
    assert [(e.text, e.label) for e in sixth.entities][:4] == [
        ("中央人民广播电台", "机构名"),  # [中央/n 人民/n 广播/vn 电台/n]nt
        ("中国国际广播电台", "机构名"),  # its inner 中国/ns is not an entity of its own
        ("中央电视台", "机构名"),
        ("香港特别行政区", "地名"),
    ]


def test_peoples_daily_pos_is_disjoint_from_dev_and_test(load):
    def norm(text: str) -> str:
        return unicodedata.normalize("NFKC", text)  # the raw corpus writes full-width digits

    pool = {norm(x.text) for x in load("peoples_daily_pos", "train")}
    for split in ("dev", "test"):
        assert not any(norm(x.text) in pool for x in load("peoples_daily", split))
    repeated = [x for x in load("peoples_daily_pos", "train") if "source_id" in x.meta]
    assert [x.id for x in repeated] == ["peoples_daily_pos.train:19980127-09-001-032.2"]


def test_word_tags_skip_blank_lines(tmp_path):
    path = write(tmp_path, "w.txt", "北京/ns 欢迎/o 你/o \n\n江泽民/nr\n")
    stats = ReadStats()
    examples = list(read_word_tags(path, id_prefix="m:", stats=stats))
    assert [x.id for x in examples] == ["m:0", "m:1"]
    assert spans(examples[0]) == [(0, 2, "北京", "ns")] and examples[0].text == "北京欢迎你"
    assert stats.skipped == {"empty line": 1}


def test_cluener_inclusive_end(load, data_root):
    train = load("cluener", "train")
    first = train[0]
    assert first.text.startswith("浙商银行企业信贷部叶老桂博士")
    # file: {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}} (inclusive)
    assert spans(first) == [(9, 12, "叶老桂", "姓名"), (0, 4, "浙商银行", "公司")]
    records = [r for _, r in iter_json_records(data_root / "zh/cluener/dev.json")]
    for example in read_cluener(data_root / "zh/cluener/dev.json"):
        assert cluener_record(example) == records[int(example.id)]  # round trip


def test_cluener_test_is_unlabelled(data_root):
    path = data_root / "zh/cluener/test.json"
    with pytest.raises(DataFormatError) as info:
        next(read_cluener(path))
    assert info.value.line == 1 and "allow_unlabelled" in str(info.value)
    examples = list(read_cluener(path, id_prefix="t:", allow_unlabelled=True))
    assert len(examples) == 1345 and examples[4].id == "t:4"
    assert all(not x.entities and x.meta["unlabelled"] for x in examples)


def test_cmeee_inclusive_end_nested_and_round_trip(load, data_root):
    v1 = load("cmeee_v1", "dev")
    assert spans(v1[0]) == [(3, 10, "SARST细胞", "身体"), (19, 25, "成人SARS", "疾病")]
    assert spans(v1[1])[:2] == [(10, 11, "肺", "身体"), (10, 14, "肺内病变", "临床表现")]  # nested
    for name in ("v1_Z-MU-Z/CMeEE_dev.json", "v2_hs3434/CMeEE-V2_dev.json"):
        path = data_root / "zh/cmeee" / name
        records = json.loads(path.read_text(encoding="utf-8"))
        assert [cmeee_record(x) for x in read_cmeee(path)] == records
    with pytest.raises(DataFormatError, match="allow_unlabelled"):
        next(read_cmeee(data_root / "zh/cmeee/v1_Z-MU-Z/CMeEE_test.json"))


def test_yidu(load, data_root):
    train = load("yidu", "train")
    assert [x.id for x in train] == [f"yidu.train:{n}" for n in range(1000)]
    assert train[0].text.startswith("，患者3月前因“直肠癌”于在我院于全麻上行直肠癌根治术")
    test = load("yidu", "test")
    assert spans(test[0])[0] == (14, 15, "腹", "解剖部位")
    assert (58, 87, "全子宫左附件切除+盆腔肿物切除+右半结肠切除+DIXON术", "手术") in spans(test[0])
    path = data_root / "zh/yidu_s4k/subtask1_training_part2.txt"  # BOM + CRLF + blank line
    records = [r for _, r in iter_json_records(path)]
    for example, record in zip(read_yidu(path), records, strict=True):
        expected = [
            {k: e[k] for k in ("label_type", "start_pos", "end_pos")} for e in record["entities"]
        ]
        assert yidu_record(example) == {
            "originalText": record["originalText"],
            "entities": expected,
        }


def test_boson_ids_text_and_order(load, data_root):
    train = load("boson", "train")
    by_id = {x.id: x for x in train}
    records = {r["id"]: r for _, r in iter_json_records(data_root / "zh/boson/train.jsonl")}
    assert by_id["boson.train:457"].text == records[457]["sentence"]
    first = by_id["boson.train:0"]
    assert first.text == records[0]["sentence"] and first.text.endswith("\n")
    assert first.entities[0] == Entity(0, 6, "浙江在线杭州", "产品名称")
    assert " 施宇翔" in first.mentions("人名")  # the authors' mention keeps its leading space
    for example in train:  # entity order is the jsonl dict order
        label = records[int(example.id.rsplit(":", 1)[1])]["label"]
        assert list(dict.fromkeys(e.text for e in example.entities)) == list(label)


def test_boson_reproduces_the_authors_answers(load, data_root):
    """Every (document, type) answer of the authors' published test.json."""
    test = load("boson", "test")
    path = data_root / "zh/ra_it_reference/data/benchmark_it_data/boson/test.json"
    queries = json.loads(path.read_text(encoding="utf-8"), strict=False)
    types = BY_NAME["boson"].types
    assert len(queries) == len(test) * len(types)
    for index, query in enumerate(queries):
        example, entity_type = test[index // len(types)], types[index % len(types)]
        turns = query["conversations"]
        assert turns[0]["value"] == "文本： " + example.text
        assert f'"{entity_type}"' in turns[2]["value"]
        assert json.loads(turns[3]["value"], strict=False) == example.mentions(entity_type)


def test_boson_nested_fallback_and_round_trip(data_root):
    path = data_root / "zh/boson/train.jsonl"
    records = [r for _, r in iter_json_records(path)]
    stats = ReadStats()
    examples = list(read_boson(path, stats=stats))
    assert [boson_record(x) for x in examples] == records  # round trip
    assert stats.unfound_mentions == 0
    recovered = [x for x in examples if "nested_recovered" in x.meta]
    count = sum(len(x.meta["nested_recovered"]) for x in recovered)
    assert count >= 29  # 29 under the plain "longer mention claims first" rule
    jinyu = next(x for x in recovered if ["金隅", "公司名称"] in x.meta["nested_recovered"])
    assert jinyu.mentions("公司名称")[:2] == ["金隅股份", "金隅"]
    # a mention with a free occurrence is placed there, not nested in a longer one
    daishan = next(x for x in examples if x.id == "188")
    assert Entity(12, 14, "岱山", "地点名称") in daishan.entities
    plain = ReadStats()
    list(read_boson(path, stats=plain, nested_fallback=False))
    assert plain.unfound_mentions == count


def test_boson_reference_copy_is_identical(data_root):
    ours = read_boson(data_root / "zh/boson/test.jsonl")
    theirs = read_boson(data_root / "zh/ra_it_reference/data/benchmark_data/boson/test.jsonl")
    assert [x.to_dict() for x in ours] == [x.to_dict() for x in theirs]


def test_boson_raw_markup(load, data_root):
    raw = load("boson_raw", "all")
    assert raw[0].entities[0].text == "浙江在线杭州" and raw[0].entities[0].start == 0
    assert raw[0].entities[0].label == "产品名称"
    assert spans(raw[0])[2] == (15, 19, " 施宇翔", "人名")
    # same documents as the RA-IT jsonl (whose text ends in "\n")
    jsonl = {
        x.text.rstrip("\n") for split in ("train", "dev", "test") for x in load("boson", split)
    }
    assert sum(x.text in jsonl for x in raw) == 1997  # the other 3 keep inner markup in the jsonl
    stats = ReadStats()
    path = data_root / "zh/boson/hugbert/origindata.txt"
    lines = path.read_text(encoding="utf-8").split("\n")
    nested = []
    for example, line in zip(read_boson_markup(path, stats=stats), lines, strict=False):
        if format_markup(example) != line:  # round trip
            nested.append(example.id)
            assert "{{time:{{time:" in line or "{{product_name:{{product_name:" in line
            assert parse_markup(format_markup(example))[1] == parse_markup(line)[1]
    assert nested == ["291", "798", "923"]
    assert stats.skipped == {"duplicate nested markup": 26}
    assert "\\n" in raw[1999].text
    unescaped = list(read_boson_markup(path, unescape_newlines=True))[1999]
    assert "\\n" not in unescaped.text and "\n" in unescaped.text


def test_char_file_round_trips(data_root):
    for name, scheme in (
        ("msra/test.char.bmes", "BMES"),
        ("peoples_daily_1998/example.dev", "BIO"),
    ):
        path = data_root / "zh" / name
        lines = []
        for example in read_char_tags(path):
            lines += [*format_char_tags(example, scheme), ""]
        assert "\n".join(lines) + "\n" == path.read_text(encoding="utf-8")
    path = data_root / "zh/weibo/weiboNER_2nd_conll.dev"
    blocks = path.read_text(encoding="utf-8").strip("\n").split("\n\n")
    lost_emoji = 0
    for example, block in zip(read_weibo(path), blocks, strict=True):
        file_tags = [line.split("\t")[1] for line in block.split("\n")]
        if "\ufffd\ufffd" in example.text:  # one token, two characters
            lost_emoji += 1
            continue
        assert char_tags(example, "BIO") == file_tags
    assert lost_emoji == 5


# ---------------------------------------------------------------------- tiny files: repairs


def test_bio_repairs_are_counted(tmp_path):
    path = write(tmp_path, "bio.txt", "甲 O\n乙 I-PER\n丙 I-PER\n\n丁 B-LOC\n戊 I-PER\n\n\n")
    stats = ReadStats()
    examples = list(read_char_tags(path, id_prefix="t:", stats=stats))
    assert [x.id for x in examples] == ["t:0", "t:1"]
    assert stats.repaired_tags == 2
    assert spans(examples[0]) == [(1, 3, "乙丙", "PER")]
    assert spans(examples[1]) == [(0, 1, "丁", "LOC"), (1, 2, "戊", "PER")]


def test_bmes_repairs_are_counted(tmp_path):
    path = write(tmp_path, "x.bmes", "中 M-NT\n共 E-NT\n的 O\n江 S-NR\n泽 E-NR\n民 O\n")
    stats = ReadStats()
    (example,) = read_char_tags(path, stats=stats)
    assert stats.repaired_tags == 2
    assert spans(example) == [(0, 2, "中共", "NT"), (3, 4, "江", "NR"), (4, 5, "泽", "NR")]


def test_weibo_segment_positions_and_cesu8(tmp_path):
    path = write(tmp_path, "w2", "李0\tB-PER.NAM\n开1\tI-PER.NAM\n复2\tI-PER.NAM\n310\tO\n\n")
    (example,) = read_weibo(path)
    assert example.text == "李开复3"  # '310' is the character 3 at segment position 10
    assert spans(example) == [(0, 3, "李开复", "PER.NAM")]
    emoji = "\U0001f60d".encode("utf-16-le")
    high, low = (
        chr(int.from_bytes(emoji[i : i + 2], "little")).encode("utf-8", "surrogatepass")
        for i in (0, 2)
    )
    data = "好\tO\n".encode() + high + b"\tO\n" + low + b"\tO\n" + "王\tB-PER.NAM\n".encode()
    (example,) = read_weibo(write(tmp_path, "w1", data), segment_positions=False)
    assert example.text == "好\U0001f60d王"
    assert spans(example) == [(2, 3, "王", "PER.NAM")]
    lone = read_weibo(write(tmp_path, "w1b", high + b"\tO\n"), segment_positions=False)
    assert next(lone).text == "\ufffd"


def test_bom_crlf_gzip_and_json_array_or_lines(tmp_path):
    record = {
        "originalText": "患者腹痛",
        "entities": [{"label_type": "解剖部位", "start_pos": 2, "end_pos": 3}],
    }
    line = json.dumps(record, ensure_ascii=False)
    bom = write(tmp_path, "y.txt", ("\ufeff" + line + "\r\n\r\n" + line + "\r\n").encode())
    as_array = write(tmp_path, "y.json", json.dumps([record, record], ensure_ascii=False, indent=2))
    for path in (bom, as_array):
        examples = list(read_yidu(path, id_prefix="y:", id_offsets={"y.json": 7}))
        assert [spans(x) for x in examples] == [[(2, 3, "腹", "解剖部位")]] * 2
    assert [x.id for x in read_yidu(as_array, id_offsets={"y.json": 7})] == ["7", "8"]
    packed = tmp_path / "pd.txt.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write("19980101-01-001-002/m  [中国/ns 政府/n]nt  毛/nr  泽东/nr  \n\n")
    (example,) = read_pd1998_pos(packed)
    assert example.id == "19980101-01-001-002"
    assert spans(example) == [(0, 4, "中国政府", "nt"), (4, 7, "毛泽东", "nr")]


def test_pd_person_pairing(tmp_path):
    path = write(
        tmp_path, "pd.txt", "19980101-01-001-009/m  杜/nr  中武/nr  孙/nr  传刚/nr  克林顿/nr\n"
    )
    (example,) = read_pd1998_pos(path)
    assert [e.text for e in example.entities] == ["杜中武", "孙传刚", "克林顿"]
    (unpaired,) = read_pd1998_pos(path, pair_person_names=False)
    assert len(unpaired.entities) == 5


# -------------------------------------------------------------------- tiny files: errors


def _error(reader, path, **options) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        list(reader(path, **options))
    assert info.value.path == str(path)
    return info.value


@pytest.mark.parametrize(
    ("reader", "content", "options", "line", "expected"),
    [
        (read_char_tags, "中 B-NT\n共 E-NT\n\n好\n", {}, 4, "CHAR TAG"),
        (read_char_tags, "中 B-NT\n共 X-NT\n", {}, 2, "expected a tag"),
        (read_weibo, "科0\tO\n技\tO\n", {}, 2, "segment position"),
        (read_word_tags, "北京/ns 是/o\n当 希望/o\n", {}, 2, "WORD/TAG"),
        (read_pd1998_pos, "19980101-01-001-001/m  [中国/ns  政府/n\n", {}, 1, "']TAG'"),
        (read_pd1998_pos, "19980101-01-001-001/m  中国/ns  政府/n]nt\n", {}, 1, "'['"),
        (read_boson_markup, "好{{time:今天}}\n{{person_name:张三\n", {}, 2, "'}}'"),
        (
            read_boson,
            '{"id": 0, "sentence": "a", "label": {}}\n{"id": 1, "sentence": \n',
            {},
            2,
            "JSON",
        ),
        (read_boson, '\n\n{"id": 0, "label": {}}\n', {}, 3, "'sentence'"),
        (
            read_cluener,
            '{"text": "abc", "label": {"name": {"ab": [[0, 2]]}}}\n',
            {},
            1,
            "inclusive",
        ),
        (
            read_cmeee,
            '[\n {"text": "ab", "entities": []},\n {"text": "ab", "entities": '
            '[{"start_idx": 0, "end_idx": 0, "type": "bod", "entity": "b"}]}\n]',
            {},
            3,
            "spell",
        ),  # fmt: skip
        (read_cmeee, '[\n {"text": "ab", "entities": []}\n {"text": "c"}\n]', {}, 3, "','"),
        (
            read_yidu,
            '{"originalText": "ab", "entities": []}\n{"originalText": "ab", "entities": '
            '[{"label_type": "药物", "start_pos": 1, "end_pos": 5}]}\n',
            {},
            2,
            "inside",
        ),  # fmt: skip
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, reader, content, options, line, expected):
    error = _error(reader, write(tmp_path, "bad.txt", content), **options)
    assert error.line == line
    assert expected in error.detail
    assert f"bad.txt:{line}:" in str(error)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = write(tmp_path, "bad.txt", "中 O\n".encode() + b"\xff\xfe O\n")
    error = _error(read_char_tags, path)
    assert error.line == 2 and "UTF-8" in error.detail
