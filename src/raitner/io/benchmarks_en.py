"""The English benchmarks of the shared data (``en/…``), with their splits and type names.

Sizes are sentences (texts) and were counted with the readers; they agree with the data README.
Type names (``label_names``, raw tag → natural-language type, in the order used for label sets):

* CrossNER and MIT Restaurant: UniversalNER's names, read off ``en/uniner_eval/*.json`` by
  aligning each gold span of the CrossNER/MIT test files with the query whose answer lists it
  (``programlang`` → ``program language``, ``metrics`` → ``metrics``, ``organisation`` →
  ``organization``, ``Restaurant_Name`` → ``Restaurant Name``; UniversalNER keeps MIT
  Restaurant's capitals). The order is UniversalNER's (= GNER's ``label.txt``), ``misc`` last.
* MIT Movie, absent from UniversalNER's files: the names of ``en/gner/mit-movie/label.txt``
  (GNER took them from the same InstructUIE conversion UniversalNER used, and its MIT Restaurant
  and CrossNER-politics names equal UniversalNER's), matched to SLIMER's tags by aligning the two
  copies of the data token by token: ``RATINGS_AVERAGE`` → ``average ratings``, the others
  lower-cased. (SLIMER's own names differ: ``ratings average``, ``movie genre``.)
* GNER sets: the label set and its order are ``label.txt``, which holds raw tags (``PER``,
  ``Disease``, ``WORK_OF_ART``); the natural-language names below are ours, from each corpus's
  documentation (OntoNotes 5, MultiNERD, AnatEM).
"""

from __future__ import annotations

from raitner.io.conll import read_conll
from raitner.io.pile_ner import read_pile_ner
from raitner.io.registry import Benchmark, Split
from raitner.io.uniner import read_uniner_conversations

CROSSNER_SOURCE = "zliucr/CrossNER @2e7ba2a7 : ner_data/"
CROSSNER_LICENSE = "MIT (en/crossner/LICENSE)"
SLIMER_SOURCE = "andrewzamai/SLIMER @cd212dc4"
GNER_SOURCE = "chrisjihee/GNER @76309b14 : data/GNER/"
GNER_LICENSE = "GNER repo Apache-2.0; the set keeps its own license (origin in source.txt)"
UNINER_SOURCE = "universal-ner/universal-ner @844e0e12 : src/eval/test_data/"
UNINER_LICENSE = "data CC BY-NC 4.0 (repo code MIT, en/uniner_eval/LICENSE)"

MISC_NOTE = (
    " Keeps CrossNER's `misc` as a type named 'misc'; UniversalNER (and so RA-IT's zero-shot "
    "numbers) dropped misc from evaluation: exclude it to compare."
)

CROSSNER_LABELS: dict[str, dict[str, str]] = {
    "ai": {
        "organisation": "organization",
        "university": "university",
        "location": "location",
        "person": "person",
        "conference": "conference",
        "country": "country",
        "researcher": "researcher",
        "task": "task",
        "product": "product",
        "algorithm": "algorithm",
        "programlang": "program language",
        "field": "field",
        "metrics": "metrics",
        "misc": "misc",
    },
    "literature": {
        "poem": "poem",
        "book": "book",
        "award": "award",
        "event": "event",
        "organisation": "organization",
        "literarygenre": "literary genre",
        "magazine": "magazine",
        "writer": "writer",
        "person": "person",
        "country": "country",
        "location": "location",
        "misc": "misc",
    },
    "music": {
        "country": "country",
        "location": "location",
        "musicalartist": "musical artist",
        "musicalinstrument": "musical instrument",
        "person": "person",
        "song": "song",
        "album": "album",
        "band": "band",
        "organisation": "organization",
        "musicgenre": "music genre",
        "event": "event",
        "award": "award",
        "misc": "misc",
    },
    "politics": {
        "politicalparty": "political party",
        "election": "election",
        "politician": "politician",
        "location": "location",
        "organisation": "organization",
        "country": "country",
        "event": "event",
        "person": "person",
        "misc": "misc",
    },
    "science": {
        "university": "university",
        "event": "event",
        "astronomicalobject": "astronomical object",
        "person": "person",
        "protein": "protein",
        "enzyme": "enzyme",
        "scientist": "scientist",
        "chemicalelement": "chemical element",
        "discipline": "discipline",
        "award": "award",
        "organisation": "organization",
        "location": "location",
        "chemicalcompound": "chemical compound",
        "country": "country",
        "academicjournal": "academic journal",
        "theory": "theory",
        "misc": "misc",
    },
}

#: CrossNER split sizes (train, dev, test), as in the data README.
CROSSNER_SIZES = {
    "ai": (100, 350, 431),
    "literature": (100, 400, 416),
    "music": (100, 380, 465),
    "politics": (200, 541, 651),
    "science": (200, 450, 543),
}

MIT_MOVIE_LABELS = {
    "GENRE": "genre",
    "YEAR": "year",
    "PLOT": "plot",
    "RATINGS_AVERAGE": "average ratings",
    "ACTOR": "actor",
    "TITLE": "title",
    "SONG": "song",
    "CHARACTER": "character",
    "RATING": "rating",
    "REVIEW": "review",
    "DIRECTOR": "director",
    "TRAILER": "trailer",
}

MIT_RESTAURANT_LABELS = {
    "Rating": "Rating",
    "Location": "Location",
    "Amenity": "Amenity",
    "Cuisine": "Cuisine",
    "Hours": "Hours",
    "Price": "Price",
    "Dish": "Dish",
    "Restaurant_Name": "Restaurant Name",
}

CONLL_LABELS = {"PER": "person", "ORG": "organization", "LOC": "location", "MISC": "misc"}


def _splits(folder: str, sizes: dict[str, int], **notes: str) -> dict[str, Split]:
    return {
        name: Split(files=(f"{folder}/{name}.txt",), size=size, note=notes.get(name, ""))
        for name, size in sizes.items()
    }


def _crossner(domain: str) -> Benchmark:
    train, dev, test = CROSSNER_SIZES[domain]
    return Benchmark(
        name=f"crossner_{domain}",
        lang="en",
        description=(
            f"CrossNER {domain} domain (Liu et al., 2021), Wikipedia sentences, "
            f"{len(CROSSNER_LABELS[domain]) - 1} types plus misc. Zero-shot evaluation "
            "only: the small train split is only an in-domain retrieval pool." + MISC_NOTE
        ),
        reader=read_conll,
        splits=_splits(f"en/crossner/{domain}", {"train": train, "dev": dev, "test": test}),
        label_names=CROSSNER_LABELS[domain],
        source=CROSSNER_SOURCE,
        license=CROSSNER_LICENSE,
        zero_shot_eval=True,
    )


def _mit(
    name: str, folder: str, labels: dict[str, str], sizes: tuple[int, int], what: str
) -> Benchmark:
    return Benchmark(
        name=name,
        lang="en",
        description=(
            f"MIT {what} queries (Liu et al., 2013), lower-cased spoken-style questions, "
            f"{len(labels)} types; tag-first columns. Zero-shot evaluation only. "
            "There is no dev split (GNER's dev.txt is a copy of test.txt)."
        ),
        reader=read_conll,
        reader_kwargs={"tag_first": True},
        splits=_splits(f"en/{folder}", {"train": sizes[0], "test": sizes[1]}),
        label_names=labels,
        source=f"{SLIMER_SOURCE} : data/MIT/",
        license="SLIMER repo Apache-2.0; original data from MIT SLS",
        zero_shot_eval=True,
    )


def _gner(
    name: str,
    folder: str,
    sizes: dict[str, int],
    labels: dict[str, str],
    description: str,
    **notes: str,
) -> Benchmark:
    return Benchmark(
        name=name,
        lang="en",
        description=description + " GNER's copy; type names are ours for label.txt's raw tags.",
        reader=read_conll,
        splits=_splits(f"en/gner/{folder}", sizes, **notes),
        label_names=labels,
        source=f"{GNER_SOURCE}{folder}/",
        license=GNER_LICENSE,
    )


def _uniner_eval(
    name: str, file: str, labels: dict[str, str], size: int, note: str = ""
) -> Benchmark:
    types = {t: t for t in labels.values() if t != "misc"}
    return Benchmark(
        name=f"uniner_eval_{name}",
        lang="en",
        description=(
            f"UniversalNER's own zero-shot test file {file}: one query per (sentence, type) for "
            f"{len(types)} natural-language types (misc dropped), every type asked for every "
            "sentence. The reader groups the queries into one example per sentence (repeated "
            "sentences stay separate; labels are already natural language); "
            "write_uniner_conversations writes the file back byte for byte. Upstream lost a "
            "sentence-final mention in a few answers (10 over the six files): score against "
            "the tagged test set to avoid that."
        ),
        reader=read_uniner_conversations,
        splits={"test": Split(files=(f"en/uniner_eval/{file}",), size=size, note=note)},
        label_names=types,
        source=UNINER_SOURCE + file,
        license=UNINER_LICENSE,
        zero_shot_eval=True,
    )


_UNINER_LAST_SENTENCE = (
    "{n} sentences: UniversalNER's file lacks the last sentence of the {n_plus}-sentence test "
    "split ({last!r}); every other sentence is there, in order."
)

BENCHMARKS: list[Benchmark] = [
    *(_crossner(domain) for domain in CROSSNER_SIZES),
    _mit("mit_movie", "mit_movie", MIT_MOVIE_LABELS, (9775, 2443), "Movie"),
    _mit("mit_restaurant", "mit_restaurant", MIT_RESTAURANT_LABELS, (7660, 1521), "Restaurant"),
    Benchmark(
        name="conll2003",
        lang="en",
        description=(
            "CoNLL-2003 English (Reuters news), CrossNER's copy with the types renamed "
            "person/organisation/location/misc; -DOCSTART- lines removed."
        ),
        reader=read_conll,
        splits=_splits(
            "en/crossner/conll2003",
            {"train": 14041, "dev": 3250, "test": 3453},
            **{
                split: "Where -DOCSTART- lines were removed two blank lines follow each other "
                "(one boundary, no empty sentence); the last sentence has no blank line after it."
                for split in ("train", "dev", "test")
            },
        ),
        label_names={
            "person": "person",
            "organisation": "organization",
            "location": "location",
            "misc": "misc",
        },
        source=CROSSNER_SOURCE + "conll2003/",
        license="MIT (CrossNER repo); CoNLL-2003 is derived from the Reuters corpus",
    ),
    Benchmark(
        name="wnut17",
        lang="en",
        description=(
            "WNUT-17 emerging and rare entities (Derczynski et al., 2017): noisy user text "
            "(Twitter, Reddit, YouTube, StackExchange), 6 types."
        ),
        reader=read_conll,
        splits={
            "train": Split(
                files=("en/wnut17/wnut17train.conll",),
                size=3394,
                note="Sentences are separated by a line holding a lone TAB, not an empty line.",
            ),
            "dev": Split(files=("en/wnut17/emerging.dev.conll",), size=1009),
            "test": Split(files=("en/wnut17/emerging.test.annotated",), size=1287),
        },
        label_names={
            "person": "person",
            "location": "location",
            "group": "group",
            "creative-work": "creative work",
            "corporation": "corporation",
            "product": "product",
        },
        source="leondz/emerging_entities_17 @e52a2d2a",
        license="CC-BY 4.0",
    ),
    Benchmark(
        name="pile_ner_sample",
        lang="en",
        description=(
            "SLIMER's sample of Pile-NER (ChatGPT-annotated open types over Pile passages): "
            "one example per passage with only the types asked about it, 5 positive and 5 "
            "negative passages per type. Open types, so label_names is empty: Benchmark.load "
            "gives an empty label_set (entity types only); each example's asked types, "
            "negatives included, are in meta['asked_types'] (read_pile_ner sets label_set)."
        ),
        reader=read_pile_ner,
        splits={
            "validation": Split(
                files=("en/pile_ner_sample/5pos_5neg_perNE_top391NEs_FalseDef/validation.jsonl",),
                size=882,
                note=(
                    "1320 (passage, type) rows grouped into 882 passages. The file has 384 "
                    "distinct types, not the README's 391 (SLIMER's folder name, top391NEs). "
                    'One mention ("U.S. Senate", governmental organization) is not in its '
                    "passage and is dropped. The TrueDef folder holds the same rows with "
                    "definitions in the instruction, minus 3 'instrument' rows (880 passages)."
                ),
            )
        },
        label_names={},
        source=f"{SLIMER_SOURCE} : data/pileNER/",
        license="Apache-2.0 (SLIMER repo)",
    ),
    _gner(
        "conllpp",
        "conllpp",
        {"train": 14041, "dev": 3250, "test": 3453},
        CONLL_LABELS,
        "CoNLL++ (Wang et al., 2019): CoNLL-2003 with the test labels corrected.",
    ),
    _gner(
        "anatem",
        "AnatEM",
        {"train": 5861, "dev": 2118, "test": 3830},
        {
            "Anatomical_system": "anatomical system",
            "Cancer": "cancer",
            "Cell": "cell",
            "Cellular_component": "cellular component",
            "Developing_anatomical_structure": "developing anatomical structure",
            "Immaterial_anatomical_entity": "immaterial anatomical entity",
            "Multi-tissue_structure": "multi-tissue structure",
            "Organ": "organ",
            "Organism_subdivision": "organism subdivision",
            "Organism_substance": "organism substance",
            "Pathological_formation": "pathological formation",
            "Tissue": "tissue",
        },
        "AnatEM anatomical entity mentions (biomedical literature), 12 types.",
    ),
    _gner(
        "bc2gm",
        "bc2gm",
        {"train": 12500, "dev": 2500, "test": 5000},
        {"GENE": "gene"},
        "BioCreative II gene mention corpus (PubMed sentences), 1 type.",
    ),
    _gner(
        "bc5cdr",
        "bc5cdr",
        {"train": 4560, "dev": 4581, "test": 4797},
        {"Disease": "disease", "Chemical": "chemical"},
        "BioCreative V chemical-disease relation corpus, NER part (PubMed abstracts), 2 types.",
    ),
    _gner(
        "ncbi",
        "ncbi",
        {"train": 5432, "dev": 923, "test": 940},
        {"Disease": "disease"},
        "NCBI disease corpus (PubMed abstracts), 1 type.",
    ),
    _gner(
        "broad_twitter_corpus",
        "broad_twitter_corpus",
        {"train": 5338, "dev": 2001, "test": 2001},
        {"PER": "person", "ORG": "organization", "LOC": "location"},
        "Broad Twitter Corpus (Derczynski et al., 2016), tweets, 3 types; a few tokens contain "
        "or are spaces (kept verbatim).",
    ),
    _gner(
        "tweetner7",
        "TweetNER7",
        {"train": 7111, "dev": 886, "test": 576},
        {
            "corporation": "corporation",
            "creative_work": "creative work",
            "event": "event",
            "group": "group",
            "location": "location",
            "person": "person",
            "product": "product",
        },
        "TweetNER7 (Ushio et al., 2022), tweets 2019-2021, 7 types; user mentions are single "
        "tokens such as `{@Harry Styles@}` that contain spaces (kept verbatim).",
    ),
    _gner(
        "wikiann_en",
        "WikiANN-en",
        {"train": 20000, "dev": 10000, "test": 10000},
        {"PER": "person", "ORG": "organization", "LOC": "location"},
        "WikiANN English (Pan et al., 2017; Rahimi et al. split), Wikipedia, 3 types.",
    ),
    _gner(
        "multinerd",
        "MultiNERD",
        {"dev": 16410, "test": 16454},
        {
            "PER": "person",
            "LOC": "location",
            "ORG": "organization",
            "ANIM": "animal",
            "BIO": "biological entity",
            "CEL": "celestial body",
            "DIS": "disease",
            "EVE": "event",
            "FOOD": "food",
            "INST": "instrument",
            "MEDIA": "media",
            "PLANT": "plant",
            "MYTH": "mythological entity",
            "TIME": "time",
            "VEHI": "vehicle",
            "SUPER": "supernatural entity",
            "PHY": "physical phenomenon",
        },
        "MultiNERD English (Tedeschi and Navigli, 2022), Wikipedia/Wikinews; dev and test only. "
        "label.txt lists 17 types; SUPER and PHY never occur in these splits.",
    ),
    _gner(
        "wikineural",
        "WikiNeural",
        {"dev": 11590, "test": 11597},
        CONLL_LABELS,
        "WikiNEuRal English (Tedeschi et al., 2021), silver Wikipedia data, 4 CoNLL types; dev "
        "and test only. Its I- tags often follow O (repaired, counted in ReadStats).",
    ),
    _gner(
        "ontonotes",
        "Ontonotes",
        {"dev": 8528, "test": 8262},
        {
            "CARDINAL": "cardinal number",
            "DATE": "date",
            "PERSON": "person",
            "NORP": "nationality or religious or political group",
            "GPE": "geopolitical entity",
            "LAW": "law",
            "ORG": "organization",
            "PERCENT": "percentage",
            "ORDINAL": "ordinal number",
            "MONEY": "money",
            "WORK_OF_ART": "work of art",
            "FAC": "facility",
            "TIME": "time",
            "LOC": "location",
            "QUANTITY": "quantity",
            "PRODUCT": "product",
            "EVENT": "event",
            "LANGUAGE": "language",
        },
        "OntoNotes 5.0 English (tner/ontonotes5), 18 types; dev and test only.",
    ),
    _uniner_eval("crossner_ai", "CrossNER_AI.json", CROSSNER_LABELS["ai"], 431),
    _uniner_eval(
        "crossner_literature", "CrossNER_literature.json", CROSSNER_LABELS["literature"], 416
    ),
    _uniner_eval("crossner_music", "CrossNER_music.json", CROSSNER_LABELS["music"], 465),
    _uniner_eval(
        "crossner_politics",
        "CrossNER_politics.json",
        CROSSNER_LABELS["politics"],
        650,
        _UNINER_LAST_SENTENCE.format(
            n=650, n_plus=651, last="The Mueller Report showed that despite assertions by …"
        ),
    ),
    _uniner_eval("crossner_science", "CrossNER_science.json", CROSSNER_LABELS["science"], 543),
    _uniner_eval(
        "mit_restaurant",
        "mit-restaurant.json",
        MIT_RESTAURANT_LABELS,
        1520,
        _UNINER_LAST_SENTENCE.format(
            n=1520, n_plus=1521, last="you can help me with some onion rings"
        ),
    ),
]
