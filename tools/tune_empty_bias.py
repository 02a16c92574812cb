"""F1 of a model over a range of empty-answer biases, from one pass over the questions.

    python tools/tune_empty_bias.py --benchmarks ontonotes,multinerd,wikineural \\
        --split test --limit 50 --seed 42 --max-new-tokens 64 --data-root ../shared/data \\
        -o runs/tune-bias [--model out/model]

For every question (every type of every text, as ``raitner eval`` asks them) it records the
plain greedy answer and the first-step *margin*: the score of the empty answer's token where it
parts from non-empty ones, minus the best other score (:mod:`raitner.infer.empty_bias`; the
tool requires the split to be at the first answer token, as for SmolLM2's tokenizer). Decoding
with a bias ``b`` changes the first token of exactly the questions with ``margin + b > 0``;
the table counts each of them as answering ``[]``, which is what they answer when the token
after ``[`` is ``]`` (``raitner eval --empty-bias b`` gives the exact figure for any one bias).
UniversalNER F1 per benchmark and its average are printed for each bias; choose the bias on
sets that are not the test benchmarks. Per-benchmark records are saved under ``-o`` and reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Biases of 0 and above: a negative one would turn answers that began with the empty
#: answer's token into non-empty ones, which one plain pass does not show.
BIASES = [step / 4 for step in range(0, 13)]


def question_records(ner, benchmark: str, args: argparse.Namespace) -> list[dict]:
    from tqdm.auto import tqdm

    from raitner.evaluate.runner import seeded_subset
    from raitner.infer.empty_bias import empty_answer_split, first_step_margins
    from raitner.io.registry import get_benchmark

    spec = get_benchmark(benchmark)
    types = [t for t in spec.types if t != "misc"]
    golds = seeded_subset(spec.load(args.split, args.data_root), args.limit, args.seed)
    backend = ner.backend
    split = empty_answer_split(backend.tokenizer, ner.template.render_answer)
    if split.prefix:
        raise SystemExit("the empty answer parts from the others after its first token")
    conversations = ner.predictor.conversations([g.text for g in golds], types)
    if len(conversations) != len(golds) * len(types):
        raise SystemExit(f"{benchmark}: some texts are split into windows; not supported here")
    answers: list[str] = []
    for offset in tqdm(range(0, len(conversations), 16), desc=f"{benchmark} answers"):
        answers += backend.generate(conversations[offset : offset + 16], args.max_new_tokens)
    margins: list[float] = []
    for offset in tqdm(range(0, len(conversations), 50), desc=f"{benchmark} margins"):
        margins += first_step_margins(backend, conversations[offset : offset + 50], split.token)
    records = []
    for index, (answer, margin) in enumerate(zip(answers, margins, strict=True)):
        gold = golds[index // len(types)]
        label = types[index % len(types)]
        records.append(
            {
                "text": gold.id,
                "label": label,
                "gold": gold.mentions(label),
                "answer": answer,
                "margin": margin,
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--data-root")
    parser.add_argument("--model", help="a raitner model folder (default: the packaged one)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    from raitner.api import OpenNER
    from raitner.atomic import atomic_write
    from raitner.evaluate.metrics import uniner_f1

    ner = None
    per_benchmark: dict[str, list[dict]] = {}
    for benchmark in [b.strip() for b in args.benchmarks.split(",") if b.strip()]:
        path = args.output / f"{benchmark}.jsonl"
        settings = {k: getattr(args, k) for k in ("split", "limit", "seed", "max_new_tokens")}
        settings["model"] = args.model
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            if json.loads(lines[0]) == settings:
                per_benchmark[benchmark] = [json.loads(line) for line in lines[1:]]
                continue
        if ner is None:
            ner = OpenNER.from_pretrained(args.model, empty_bias=0.0)
        records = question_records(ner, benchmark, args)
        with atomic_write(path) as handle:
            handle.write(json.dumps(settings) + "\n")
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        per_benchmark[benchmark] = records

    names = list(per_benchmark)
    print("| bias | " + " | ".join(names) + " | average | `[]` answers |")
    print("|---:|" + "---:|" * (len(names) + 2))
    for bias in BIASES:
        scores, empty = [], 0
        for records in per_benchmark.values():
            # the questions whose first token the bias turns to the empty answer's
            texts = [
                "[]" if -bias < record["margin"] <= 0 else record["answer"] for record in records
            ]
            empty += sum(text == "[]" for text in texts)
            result = uniner_f1(texts, [r["gold"] for r in records], [r["label"] for r in records])
            scores.append(100 * result.f1)
        cells = " | ".join(f"{s:.2f}" for s in scores)
        print(f"| {bias:+.2f} | {cells} | {sum(scores) / len(scores):.2f} | {empty} |")


if __name__ == "__main__":
    main()
