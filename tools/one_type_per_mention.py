"""Would keeping each mention for one type only help?

An analysis of saved evaluation answers (``raitner eval -o DIR``), not a decoding option. The
default model often answers the same mention for several types of one text (the "wrong type"
errors of the report). For every such mention this keeps it for one of those types and scores
the answers again with UniversalNER's F1. Two ways to choose the type:

* ``--choose model`` (default): for each type, the log-probability that the model's answer to
  that type's question starts with the mention (the tokens of ``["<mention>`` after the prompt,
  teacher-forced); the best-scoring type is kept.
* ``--choose rarest --train-set FILE``: the type the model's training set asked least often
  with a non-empty answer, as a proxy for the most specific one (a model trained mostly on
  *person* answers a writer's name for *person* and for *writer*; CrossNER marks the span
  *writer*). Types tied at the lowest count are all kept. Needs no model.

A text asked in several windows is left as it is (its prompts are per window).

    python tools/one_type_per_mention.py runs/default-n50 --data-root ../shared/data \\
        -o runs/one-type-per-mention-n50.json
    python tools/one_type_per_mention.py runs/default31-n50 --choose rarest --train-set \\
        runs/reproduce/en-neg1/work/datasets/ra-it-nn-k2-n1600-s2-acf4d43115/train.jsonl \\
        --data-root ../shared/data -o runs/rarest-type-n50.json

Prints the F1 per benchmark before and after, and writes them with the counts to ``-o``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

#: the list metric's pattern (raitner.evaluate.metrics): the surface strings of an answer it
#: reads, before normalisation
_LIST = re.compile(r"\[.*?\]")


def _log_probs(model, tokenizer, prompts, continuations, batch_size):
    """Sum of log-probabilities of each continuation's tokens after its prompt."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores = []
    for start in range(0, len(prompts), batch_size):
        block = list(
            zip(
                prompts[start : start + batch_size],
                continuations[start : start + batch_size],
                strict=True,
            )
        )
        width = max(len(p) + len(c) for p, c in block)
        ids = torch.full((len(block), width), pad, dtype=torch.long)
        mask = torch.zeros((len(block), width), dtype=torch.long)
        for row, (prompt, continuation) in enumerate(block):
            sequence = prompt + continuation
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        log_probs = torch.log_softmax(logits, dim=-1)
        for row, (prompt, continuation) in enumerate(block):
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(continuation) - 1)
            picked = log_probs[row, positions, torch.tensor(continuation)]
            scores.append(float(picked.sum()))
    return scores


def answered_type_counts(train_set: Path) -> Counter:
    """How often each type (lower-cased) is asked with a non-empty answer in a training set
    written by ``raitner build``; its template is read from the ``.stats.json`` beside it."""
    from raitner.errors import RaitnerError
    from raitner.prompts.templates import default_template_id, get_template

    stats = train_set.with_suffix(".stats.json")
    template_id = default_template_id("en")
    if stats.is_file():
        template_id = json.loads(stats.read_text(encoding="utf-8"))["settings"]["template"]
    head, _, tail = get_template(template_id).question.partition("{label}")
    question = re.compile(re.escape(head) + "(.+)" + re.escape(tail))
    counts: Counter = Counter()
    with train_set.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                messages = json.loads(line)["messages"]
                for asked, answer in zip(messages, messages[1:], strict=False):
                    found = asked["role"] == "user" and question.fullmatch(asked["content"])
                    if found and answer["role"] == "assistant" and json.loads(answer["content"]):
                        counts[found.group(1).lower()] += 1
            except (ValueError, KeyError, TypeError) as error:
                raise RaitnerError(
                    f"{train_set}:{number}: expected a conversation of `raitner build` "
                    f"(messages with JSON-list answers): {error}"
                ) from None
    if not counts:
        raise RaitnerError(f"{train_set}: no question of template {template_id} with an answer")
    return counts


def rarest_types(labels, counts: Counter) -> set[str]:
    """The labels asked least often in training (all of them when tied)."""
    lowest = min(counts[label.lower()] for label in labels)
    return {label for label in labels if counts[label.lower()] == lowest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="a raitner eval output folder")
    parser.add_argument(
        "--model",
        default=None,
        help="the model that wrote the answers (default: the embedded default)",
    )
    parser.add_argument(
        "--choose",
        choices=("model", "rarest"),
        default="model",
        help="keep the type the model scores best, or the one its training set asked least",
    )
    parser.add_argument(
        "--train-set", type=Path, help="for --choose rarest: the model's training set (JSONL)"
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if (args.choose == "rarest") != (args.train_set is not None):
        parser.error("--train-set goes with --choose rarest, and only with it")

    from raitner.api import OpenNER
    from raitner.atomic import atomic_write
    from raitner.evaluate.metrics import (
        clean_uniner_response,
        normalize_answer,
        parse_answer,
        uniner_f1,
    )
    from raitner.evaluate.runner import per_text_counts
    from raitner.evaluate.significance import observed_delta, paired_bootstrap
    from raitner.io.registry import load_benchmark

    started = time.time()
    results = {}
    text_counts_before: dict[str, list[list[int]]] = {}
    text_counts_after: dict[str, list[list[int]]] = {}
    files = [
        path
        for path in sorted((args.eval_dir / "predictions").glob("*.jsonl"))
        if not path.name.endswith(".journal.jsonl")
    ]
    if not files:
        parser.error(f"no saved predictions under {args.eval_dir / 'predictions'}")
    if args.choose == "rarest":
        from raitner.errors import RaitnerError

        try:
            type_counts = answered_type_counts(args.train_set)
        except (OSError, RaitnerError) as error:
            parser.error(str(error))
    else:
        ner = OpenNER.from_pretrained(args.model, backend="hf")
        backend, template = ner.backend, ner.template
        model, tokenizer = backend.model, backend.tokenizer
        model.eval()
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        settings = json.loads(lines[0])["settings"]
        benchmark = settings["benchmark"]
        records = [json.loads(line) for line in lines[1:]]
        # by id: a test split can hold one text twice with different annotations (CrossNER
        # Music has 6 such texts)
        golds = {ex.id: ex for ex in load_benchmark(benchmark, settings["split"], args.data_root)}
        queries, prompts, continuations = [], [], []
        kept_types: dict[tuple[int, str], set[str]] = {}
        windowed = 0
        for index, record in enumerate(records):
            if len(record.get("windows", [[0, 0]])) > 1:
                windowed += 1
                continue
            surfaces: dict[str, dict[str, str]] = {}
            for label, answer in record["answers"].items():
                cleaned = clean_uniner_response(answer)
                if not parse_answer(cleaned).ok:
                    continue
                raw = json.loads(_LIST.match(cleaned).group())
                for surface in raw:
                    surfaces.setdefault(normalize_answer(surface), {}).setdefault(label, surface)
            for mention, by_label in surfaces.items():
                if len(by_label) < 2:
                    continue
                if args.choose == "rarest":
                    kept_types[(index, mention)] = rarest_types(by_label, type_counts)
                for label, surface in by_label.items():
                    queries.append((index, mention, label))
                    if args.choose == "rarest":
                        continue
                    conversation = template.query_messages(record["text"], label)
                    prompts.append(
                        tokenizer(backend.render(conversation), add_special_tokens=False)[
                            "input_ids"
                        ]
                    )
                    continuations.append(
                        tokenizer(template.render_answer([surface])[:-2], add_special_tokens=False)[
                            "input_ids"
                        ]
                    )
        if args.choose == "model":
            scores = _log_probs(model, tokenizer, prompts, continuations, args.batch_size)
            best: dict[tuple[int, str], tuple[float, str]] = {}
            for (index, mention, label), score in zip(queries, scores, strict=True):
                if (index, mention) not in best or score > best[(index, mention)][0]:
                    best[(index, mention)] = (score, label)
            kept_types = {key: {label} for key, (_, label) in best.items()}
        dropped = {
            (index, mention, label)
            for index, mention, label in queries
            if label not in kept_types[(index, mention)]
        }
        before, after, gold_lists = [], [], []
        for index, record in enumerate(records):
            example = golds[record["id"]]
            for label, answer in record["answers"].items():
                before.append(answer)
                gold_lists.append(example.mentions(label))
                parsed = parse_answer(clean_uniner_response(answer))
                kept = [m for m in parsed.mentions if (index, m, label) not in dropped]
                after.append(answer if len(kept) == len(parsed.mentions) else json.dumps(kept))
        old, new = uniner_f1(before, gold_lists), uniner_f1(after, gold_lists)
        for side, result in ((text_counts_before, old), (text_counts_after, new)):
            n_types = len(records[0]["answers"]) if records else 0
            side[benchmark] = per_text_counts({"uniner": result}, len(records), n_types)["uniner"]
        results[benchmark] = {
            "f1_before": 100 * old.f1,
            "f1_after": 100 * new.f1,
            "precision_before": 100 * old.precision,
            "precision_after": 100 * new.precision,
            "recall_before": 100 * old.recall,
            "recall_after": 100 * new.recall,
            "mentions_in_conflict": len({(i, m) for i, m, _ in queries}),
            "answers_dropped": len(dropped),
            "texts_left_as_they_are_windowed": windowed,
        }
        row = results[benchmark]
        print(
            f"{benchmark:22s} F1 {row['f1_before']:6.2f} -> {row['f1_after']:6.2f}  "
            f"({row['mentions_in_conflict']} mentions in conflict, {len(dropped)} answers dropped, "
            f"{time.time() - started:.0f} s)",
            flush=True,
        )
    average = {
        key: sum(r[key] for r in results.values()) / len(results)
        for key in ("f1_before", "f1_after")
    }
    interval = paired_bootstrap({0: text_counts_before}, {0: text_counts_after})
    average["delta"] = observed_delta({0: text_counts_before}, {0: text_counts_after})
    average["delta_95_interval"] = [interval.low, interval.high]
    print(
        f"average F1 {average['f1_before']:.2f} -> {average['f1_after']:.2f}: "
        f"Δ {average['delta']:+.2f}, 95 % interval over texts "
        f"[{interval.low:+.2f}, {interval.high:+.2f}] (paired bootstrap, {interval.resamples})"
    )
    arguments = argv if argv is not None else sys.argv[1:]
    command = "python " + shlex.join(["tools/one_type_per_mention.py", *arguments])
    print(f"command: {command}")
    with atomic_write(args.output) as handle:
        json.dump({"command": command, "average": average, "benchmarks": results}, handle, indent=2)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
