"""Caller-thread cost of aither-hf per pipeline call, against the bare call, side by side.

    .venv/bin/python benchmarks/bench_hf.py [--calls 300]

Tiny random BERT pipelines (no download), one torch thread. Spans go to aither's in-memory capture (no network,
no encoding). A pipeline call costs milliseconds and varies by more than aither adds, so bare and tracked calls
are timed in alternating rounds (median of rounds), and the last column times aither's own work alone on the
same inputs and outputs: the input sample, the output capture and the record, which is what a tracked call adds.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
import transformers
from _timing import alternating, side_by_side, timed
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast, pipeline

import aither
from aither.integrations import ModelLogger, WrapOptions, capture_embeddings, render
from aither.testing import capture
from aither_hf._sampling import capture_inputs_safely, output_capture

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "good",
    "bad",
    "movie",
    "is",
    "was",
    "very",
    "not",
    "paris",
    "london",
    "city",
]


def build(task: str) -> Any:
    vocab = pathlib.Path(tempfile.mkdtemp()) / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    config = BertConfig(
        vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2,
    )  # fmt: skip
    model = (BertForSequenceClassification if task == "text-classification" else BertModel)(config).eval()
    return pipeline(task, model=model, tokenizer=tokenizer_of(vocab))


def tokenizer_of(path: pathlib.Path) -> Any:
    """A tokenizer of the vocabulary file: transformers 5 takes the words (``vocab=``; it ignores ``vocab_file=``
    and makes every word [UNK]), earlier versions the file."""
    import inspect

    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:
        return BertTokenizerFast(vocab={word: i for i, word in enumerate(path.read_text().split())})
    return BertTokenizerFast(vocab_file=str(path))


def aither_alone(pipe: Any, inputs: Any, calls: int) -> float:
    """What the tracked __call__ adds, without the pipeline: sample, capture the output, record."""
    output = pipe(inputs)
    logger = ModelLogger(WrapOptions("alone"), "transformers")
    batched = isinstance(inputs, list)

    def work() -> None:
        sample = capture_inputs_safely(inputs, pipe.task, None, 5, 10)
        capture = output_capture(pipe.task, batched)
        logger.record("__call__", inputs, output, time.time_ns(), capture_output=capture, features=sample)

    timed(work, 200)
    return statistics.median(timed(work, calls * 10) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    text = "the cat sat on the mat and the dog was very good"
    cases = [
        ("text-classification, 1 text", "text-classification", text),
        ("text-classification, 32 texts", "text-classification", [text] * 32),
        ("feature-extraction, 1 text", "feature-extraction", text),
        ("feature-extraction, 32 texts", "feature-extraction", [text] * 32),
    ]
    rows = []
    with capture() as captured:
        for label, task, inputs in cases:
            pipe = build(task)
            tracked = aither.wrap(pipe, name="bench")
            calls = args.calls if not isinstance(inputs, list) else max(args.calls // 10, 10)
            bare_us, tracked_us = side_by_side(
                lambda p=pipe, i=inputs: p(i), lambda t=tracked, i=inputs: t(i), calls, rounds=7, warmup=20
            )
            rows.append((label, bare_us, tracked_us, aither_alone(pipe, inputs, calls)))
        recorded = len(captured.records)
    print("aither-hf: tiny random BERT (2 layers, hidden 32), 1 torch thread")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"| {'call':<31} | {'bare us':>9} | {'tracked us':>10} | {'difference':>10} | {'aither alone us':>15} |")
    print(f"|{'-' * 33}|{'-' * 10}:|{'-' * 11}:|{'-' * 11}:|{'-' * 16}:|")
    for label, bare_us, tracked_us, alone in rows:
        print(
            f"| {label:<31} | {bare_us:>9.0f} | {tracked_us:>10.0f} | {tracked_us - bare_us:>+10.0f} | {alone:>15.1f} |"
        )
    print(f"({recorded} spans recorded)")
    embeddings(max(args.calls // 10, 10))


def embeddings(calls: int) -> None:
    """``wrap(..., embeddings=True)`` on a small BERT: the encoder's hidden states kept by reference on the
    caller's thread, the sampled rows indexed out when the call returns; pooled and projected on the worker.
    Three pipelines with the same weights (bare, tracked, tracked with embeddings) alternate in each round."""
    text = "the cat sat on the mat and the dog was very good"
    print("\nEmbeddings: small BERT (2 layers, hidden 32), text-classification (alternating rounds, us per call)")
    print(
        f"| {'call':<31} | {'bare us':>9} | {'tracked us':>10} | {'embeddings us':>13} | {'added by embeddings':>19} |"
    )
    print(f"|{'-' * 33}|{'-' * 10}:|{'-' * 11}:|{'-' * 14}:|{'-' * 20}:|")
    with capture() as captured:
        for label, inputs in (("1 text", text), ("32 texts, batch_size=32", [text] * 32)):
            torch.manual_seed(0)
            bare = build("text-classification")
            plain = aither.wrap(build("text-classification"), name="plain")
            embedded = aither.wrap(build("text-classification"), name="embedded", embeddings=True)
            options = {"batch_size": 32} if isinstance(inputs, list) else {}
            times = alternating(
                {
                    "bare": lambda i=inputs, p=bare, o=options: p(i, **o),
                    "tracked": lambda i=inputs, p=plain, o=options: p(i, **o),
                    "embeddings": lambda i=inputs, p=embedded, o=options: p(i, **o),
                },
                calls,
                rounds=7,
            )
            b, t, e = (statistics.median(times[k]) for k in ("bare", "tracked", "embeddings"))
            print(f"| {label:<31} | {b:>9.0f} | {t:>10.0f} | {e:>13.0f} | {e - t:>+19.0f} |")
        record = next(r for r in reversed(captured.records) if r.model.name == "embedded")
    render_us = statistics.median(timed(lambda: render(record.features), 50) for _ in range(5))
    hidden, mask = torch.randn(32, 16, 32), torch.ones(32, 16, dtype=torch.long)
    capture_us = statistics.median(timed(lambda: capture_embeddings([(hidden, mask)], 5), 2000) for _ in range(5))
    print(f"caller: the sampled rows of one call's hidden states (32 x 16 tokens x 32), alone: {capture_us:.1f} us")
    print(f"worker: render one span's text descriptors + pooled, projected embeddings: {render_us:.0f} us")


if __name__ == "__main__":
    main()
