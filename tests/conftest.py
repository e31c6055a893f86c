"""Shared fixtures: the lexicon and the spaCy pipeline are built once per run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.extract import make_nlp
from kg.lexicon import load_lexicon

DATA = Path(__file__).parent / "data"
ARTICLES = DATA / "articles"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.fixture(scope="session")
def lexicon():
    return load_lexicon()


@pytest.fixture(scope="session")
def nlp(lexicon):
    return make_nlp(lexicon)  # slow to build: once per test run


@pytest.fixture(scope="session")
def seeds():
    if not SEEDS.is_dir():
        pytest.skip("../shared/seeds is absent")
    return SEEDS


# CI runs the property tests with a fixed seed so a landing never depends on luck;
# a developer's run explores new examples each time.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
