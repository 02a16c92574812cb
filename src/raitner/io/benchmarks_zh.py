"""The Chinese benchmarks under ``<data root>/zh`` (see ``shared/data/README.md``).

Split sizes are the README's counts; every one was checked against the files (see the
tests). Where a file has a quirk that a naive count would get wrong, ``Split.note`` says so.

Natural-language type names (``label_names``), in the order the types are asked about:

* Boson: the authors' ``abb2labelname.json`` (product_name→产品名称 …), in its order, which
  is the question order of their published ``benchmark_it_data/boson/test.json``. The RA-IT
  jsonl already carries the Chinese names, so they map to themselves as well.
* MSRA: the same first author's MSRA ``abb2labelname.json`` (Emma1066/Zero-Shot-NER-with-
  ChatGPT ``data/msra_5_samples``): nr→人物, ns→地点, nt→机构.
* Weibo: that repository's Weibo label order ``人名, 地名, 机构名称, 地缘政治实体``
  (``code/const.py``); NAM (named) and NOM (nominal) mentions of one type share a name, which
  is how RA-IT's Table 5 counts Weibo as 4 types.
* People's Daily 1998: the names in the dataset's own readme (PER 人名, LOC 地名, ORG 机构名).
* CLUENER: the names in the dataset's own README (address 地址 … scene 景点).
* CMeEE: the official CBLUE category names (dis 疾病, sym 临床表现 …); the RA-IT authors did
  not publish theirs.
* Yidu-S4K: the labels are already Chinese (疾病和诊断 …) and map to themselves.

Not registered (no gold labels): CLUENER test, CMeEE test (v1 has no ``entities``; v2 has an
empty list for every record), MSRA ``test.txt`` (bare text; gold is ``test_label.txt``).
Their readers read them with ``allow_unlabelled=True``.
"""

from __future__ import annotations

from raitner.io.registry import Benchmark, Split
from raitner.io.zh_conll import read_char_tags, read_weibo
from raitner.io.zh_json import read_boson, read_cluener, read_cmeee, read_yidu
from raitner.io.zh_markup import read_boson_markup
from raitner.io.zh_wordtag import read_pd1998_pos, read_word_tags

_NO_LICENSE = "none stated"

BOSON_TYPES = {
    "product_name": "产品名称",
    "time": "时间",
    "person_name": "人名",
    "org_name": "组织名称",
    "location": "地点名称",
    "company_name": "公司名称",
}
_BOSON_LABELS = {**BOSON_TYPES, **{name: name for name in BOSON_TYPES.values()}}

_MSRA_LABELS = {"nr": "人物", "ns": "地点", "nt": "机构"}

_WEIBO_LABELS = {
    "PER.NAM": "人名",
    "PER.NOM": "人名",
    "LOC.NAM": "地名",
    "LOC.NOM": "地名",
    "ORG.NAM": "机构名称",
    "ORG.NOM": "机构名称",
    "GPE.NAM": "地缘政治实体",
    "GPE.NOM": "地缘政治实体",
}

_PD_LABELS = {"PER": "人名", "LOC": "地名", "ORG": "机构名"}
_PD_POS_LABELS = {"nr": "人名", "ns": "地名", "nt": "机构名"}

_CLUENER_LABELS = {
    "address": "地址",
    "book": "书名",
    "company": "公司",
    "game": "游戏",
    "government": "政府",
    "movie": "电影",
    "name": "姓名",
    "organization": "组织机构",
    "position": "职位",
    "scene": "景点",
}

_CMEEE_LABELS = {
    "dis": "疾病",
    "sym": "临床表现",
    "dru": "药物",
    "equ": "医疗设备",
    "pro": "医疗程序",
    "bod": "身体",
    "ite": "医学检验项目",
    "mic": "微生物类",
    "dep": "科室",
}

_YIDU_LABELS = {
    name: name for name in ("疾病和诊断", "影像检查", "实验室检验", "手术", "药物", "解剖部位")
}

_RA_IT = "Emma1066/Retrieval-Augmented-IT-OpenNER @c9cb37ef : data/benchmark_data/boson/"
_HUGBERT = "hspuppy/hugbert @231f5c8a"

_WEIBO_V2_NOTE = (
    "v2 (weiboNER_2nd_conll.*): each character is followed by its position in its word segment "
    "(科0, and multi-digit ones such as e12), stripped; emoji were lost upstream and appear as "
    "'\\ufffd\\ufffd'. Tags: a few I- tags follow O or another type (train 10, test 4 repairs)."
)
_WEIBO_V1_NOTE = (
    "v1 (weiboNER.conll.*): no segment positions (the README's 'char+segment-digit' is v2 only); "
    "the file is CESU-8: an emoji is written as its two UTF-16 surrogate halves on two lines, "
    "which the reader joins back into one character (so such sentences are shorter than their "
    "line count). Repaired tags: train 21, dev 4, test 10."
)

BENCHMARKS: list[Benchmark] = [
    Benchmark(
        name="boson",
        lang="zh",
        description=(
            "Boson NER (6 types: product, time, person, organisation, location, company), the "
            "RA-IT authors' own train/dev/test split and text. Types named by the authors' "
            "abb2labelname.json."
        ),
        reader=read_boson,
        splits={
            "train": Split(("zh/boson/train.jsonl",), 1637),
            "dev": Split(("zh/boson/dev.jsonl",), 184),
            "test": Split(
                ("zh/boson/test.jsonl",),
                179,
                note="The authors' test.json asks all 6 types of each of the 179 documents "
                "(1074 queries).",
            ),
        },
        label_names=_BOSON_LABELS,
        source=_RA_IT + " (identical copy in zh/ra_it_reference/)",
        license="none stated (the repository has no LICENSE file)",
    ),
    Benchmark(
        name="boson_raw",
        lang="zh",
        description=(
            "Boson NER raw corpus with inline {{type:mention}} markup: the same 2000 documents as "
            "the RA-IT split, with real character offsets. Types named by abb2labelname.json."
        ),
        reader=read_boson_markup,
        splits={
            "all": Split(
                ("zh/boson/hugbert/origindata.txt",),
                2000,
                note=(
                    "Literal '\\n' escapes are kept (as in the RA-IT jsonl). Three documents mark "
                    "every mention twice ({{t:{{t:x}}}}): one entity is kept, 26 duplicates are "
                    "counted in stats.skipped; the RA-IT jsonl keeps the inner markup in its text "
                    "for those three."
                ),
            ),
        },
        label_names=_BOSON_LABELS,
        source=_HUGBERT + " : ner_dataset (Boson origindata.txt)",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="msra",
        lang="zh",
        description=(
            "MSRA (SIGHAN 2006 bakeoff 3) news NER, canonical split; nr/ns/nt named 人物/地点/机构 "
            "as in the first author's earlier MSRA abb2labelname.json."
        ),
        reader=read_word_tags,
        splits={
            "train": Split(("zh/msra/hugbert/train.txt",), 46364),
            "test": Split(
                ("zh/msra/hugbert/test_label.txt",),
                4365,
                note="Gold test labels are in test_label.txt; test.txt is the bare text.",
            ),
        },
        label_names=_MSRA_LABELS,
        source=_HUGBERT,
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="msra_bmes",
        lang="zh",
        description=(
            "MSRA test as char BMES (NR/NS/NT): the same 4365 sentences, text and entities as "
            "msra:test (checked), from another source; evaluate one of the two, not both."
        ),
        reader=read_char_tags,
        splits={"test": Split(("zh/msra/test.char.bmes",), 4365)},
        label_names={"NR": "人物", "NS": "地点", "NT": "机构"},
        source="BIT-ENGD/chinese-ner-benchmark @9f2c6d3e",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="weibo",
        lang="zh",
        description=(
            "Weibo NER, revised version (v2, weiboNER_2nd_conll). PER/LOC/ORG/GPE, each NAM (name) "
            "or NOM (nominal); NAM and NOM share one type name (人名/地名/机构名称/地缘政治实体, "
            "the first author's Weibo names), giving the 4 types of RA-IT's Table 5."
        ),
        reader=read_weibo,
        splits={
            split: Split((f"zh/weibo/weiboNER_2nd_conll.{split}",), size, note=_WEIBO_V2_NOTE)
            for split, size in (("train", 1350), ("dev", 270), ("test", 270))
        },
        label_names=_WEIBO_LABELS,
        source="hltcoe/golden-horse @7a73c08e",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="weibo_v1",
        lang="zh",
        description="Weibo NER, original version (v1, weiboNER.conll); types as in weibo.",
        reader=read_weibo,
        splits={
            split: Split((f"zh/weibo/weiboNER.conll.{split}",), size, note=_WEIBO_V1_NOTE)
            for split, size in (("train", 1350), ("dev", 270), ("test", 270))
        },
        label_names=_WEIBO_LABELS,
        source="hltcoe/golden-horse @7a73c08e",
        license=_NO_LICENSE,
        reader_kwargs={"segment_positions": False},
    ),
    Benchmark(
        name="cluener",
        lang="zh",
        description=(
            "CLUENER 2020 fine-grained NER (10 types), type names from the dataset's README. The "
            "test file has no labels and is not registered (read_cluener(..., "
            "allow_unlabelled=True) reads it); RA-IT split dev in half to make a test set."
        ),
        reader=read_cluener,
        splits={
            "train": Split(("zh/cluener/train.json",), 10748),
            "dev": Split(("zh/cluener/dev.json",), 1343),
        },
        label_names=_CLUENER_LABELS,
        source=f"{_HUGBERT} (official cluener_public)",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="cmeee",
        lang="zh",
        description=(
            "CMeEE-V2 (CBLUE) Chinese medical NER, 9 types, nested entities; official CBLUE type "
            "names. Only dev has gold (train could not be obtained; test is unlabelled)."
        ),
        reader=read_cmeee,
        splits={"dev": Split(("zh/cmeee/v2_hs3434/CMeEE-V2_dev.json",), 5000)},
        label_names=_CMEEE_LABELS,
        source="hs3434/CMeEE-V2 @a49056b5",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="cmeee_v1",
        lang="zh",
        description="CMeEE v1 (CBLUE, first release): dev only; types as in cmeee.",
        reader=read_cmeee,
        splits={"dev": Split(("zh/cmeee/v1_Z-MU-Z/CMeEE_dev.json",), 5000)},
        label_names=_CMEEE_LABELS,
        source="Z-MU-Z/cmeee @3ba030ca",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="yidu",
        lang="zh",
        description="Yidu-S4K (CCKS 2019 task 1) clinical NER, 6 types already named in Chinese.",
        reader=read_yidu,
        splits={
            "train": Split(
                (
                    "zh/yidu_s4k/subtask1_training_part1.txt",
                    "zh/yidu_s4k/subtask1_training_part2.txt",
                ),
                1000,
                note=(
                    "400 + 600 documents. Both parts start with a UTF-8 BOM; part 2 has CRLF line "
                    "ends and a trailing blank line (601 lines). Ids run 0-999 across both parts."
                ),
                reader_kwargs={"id_offsets": {"subtask1_training_part2.txt": 400}},
            ),
            "test": Split(
                ("zh/yidu_s4k/subtask1_test_set_with_answer.json",),
                379,
                note="JSON Lines despite the .json name; entities have no 'overlap' key.",
            ),
        },
        label_names=_YIDU_LABELS,
        source="GuocaiL/nlp_corpus @f924a9e1",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="peoples_daily",
        lang="zh",
        description=(
            "People's Daily 1998 char BIO (PER/LOC/ORG named 人名/地名/机构名 as in its readme). "
            "Not the People's Daily 2014 corpus RA-IT used; the train file was not obtained."
        ),
        reader=read_char_tags,
        splits={
            "dev": Split(("zh/peoples_daily_1998/example.dev",), 2318),
            "test": Split(("zh/peoples_daily_1998/example.test",), 4636),
        },
        label_names=_PD_LABELS,
        source="BIT-ENGD/chinese-ner-benchmark @9f2c6d3e (from zjy-ucas/ChineseNER)",
        license=_NO_LICENSE,
    ),
    Benchmark(
        name="peoples_daily_pos",
        lang="zh",
        description=(
            "People's Daily January 1998, PKU POS-tagged text, with entities DERIVED from the POS "
            "tags (nr person, ns place, nt organisation, [..]ns/[..]nt compounds; surname and "
            "given name paired heuristically). Silver data, usable as a training pool for "
            "peoples_daily: none of its dev/test sentences occurs in it."
        ),
        reader=read_pd1998_pos,
        splits={
            "train": Split(
                ("zh/peoples_daily_1998/pd1998_hugbert/pd1998.txt.gz",),
                19484,
                note=(
                    "Size counted from the file (the README gives none): 23064 lines of which 3580 "
                    "are blank. Ids are the corpus's sentence ids (19980101-01-001-001)."
                ),
            ),
        },
        label_names=_PD_POS_LABELS,
        source=f"{_HUGBERT} : ner_dataset (pd1998)",
        license=_NO_LICENSE,
    ),
]
