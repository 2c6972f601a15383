"""The search normalisation (pure functions): one table of names, what they are indexed
under and their keys; the typo machinery against a reference."""

from __future__ import annotations

import random

import pytest

from delivery.modules.search_text import (
    deletions,
    edit_distance,
    field_tokens,
    fold,
    grams,
    key,
    max_edits,
    query_grams,
    skeleton,
    symbol_token,
    typo_cost,
    vocab_terms,
)

# name -> (indexed tokens, key)
NAMES = [
    ("Beyoncé", "beyonce", "beyonce"),
    ("BEYONCE", "beyonce", "beyonce"),
    ("Beyonce\u0301", "beyonce", "beyonce"),  # decomposed accent
    ("Sigur Rós", "sigur ros sigurros", "sigurros"),
    ("Motörhead", "motorhead", "motorhead"),
    ("Ægir", "aegir", "aegir"),
    ("Łódź", "lodz", "lodz"),
    ("Straße", "strasse", "strasse"),
    ("İstanbul", "istanbul", "istanbul"),
    ("ｆｕｌｌ\u3000ｗｉｄｔｈ", "full width fullwidth", "fullwidth"),  # full-width forms
    ("AC/DC", "ac dc acdc", "acdc"),
    ("AC DC", "ac dc acdc", "acdc"),  # spelt apart: the same tokens and key
    ("Mr.Children", "mr children mrchildren", "mrchildren"),
    ("will.i.am", "will i am william", "william"),
    ("P!nk", "p nk pnk pink", "pink"),  # ! between letters also read as i
    ("Ke$ha", "ke ha keha kesha", "kesha"),
    ("Wham!", "wham", "wham"),  # a trailing ! is punctuation
    ("blink-182", "blink 182 blink182", "blink182"),
    ("Guns N' Roses", "guns n roses gunsnroses", "gunsnroses"),
    ("Simon & Garfunkel", "simon and garfunkel simonandgarfunkel", "simonandgarfunkel"),
    ("Florence + The Machine", "florence and the machine florenceandthemachine", None),
    ("The Beatles", "the beatles thebeatles", "beatles"),  # the article is not in the key
    ("!!!", symbol_token("!!!"), "!!!"),  # symbols only: kept
    (
        "宇多田ヒカル",
        "宇多 多田 田ひ ひか かる 宇 多 田 ひ か る",
        "宇多田ひかる",
    ),  # bigrams, kana folded
    ("ﾋｶﾙ", "ひか かる ひ か る", "ひかる"),  # half-width katakana
    ("周杰伦", "周杰 杰伦 周 杰 伦", "周杰伦"),
    ("Кино", "кино", "кино"),
    ("Ёлка", "елка", "елка"),
    ("", "", ""),
    ("  ", "", ""),
]


@pytest.mark.parametrize(("name", "tokens", "expected_key"), NAMES)
def test_names_are_indexed_under_their_normalised_tokens(name, tokens, expected_key):
    assert field_tokens(name) == (f" {tokens} " if tokens else "")
    if expected_key is not None:
        assert key(name) == expected_key


@pytest.mark.parametrize(
    ("a", "b"),
    [("AC/DC", "acdc"), ("ac dc", "AC-DC"), ("Beyoncé", "BEYONCE"), ("P!nk", "pink")],
)
def test_spellings_people_type_share_a_key(a, b):
    assert key(a) == key(b)


def test_fold_keeps_what_is_not_an_accent():
    assert fold("ビール") == "びーる"  # dakuten stay, katakana read as hiragana
    assert fold("방탄소년단") == "방탄소년단"  # Hangul syllables recomposed
    assert fold("Йога") == "иога"  # Cyrillic breve is an accent like any other


def test_unsegmented_runs_match_from_the_middle():
    tokens = field_tokens("周杰伦").split()
    assert "杰伦" in tokens and "杰" in tokens


def _osa(a: str, b: str) -> int:
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_edit_distance_matches_a_reference():
    rng = random.Random(3)
    for _ in range(3000):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        for limit in (1, 2):
            assert edit_distance(a, b, limit) == min(_osa(a, b), limit + 1), (a, b, limit)
    assert edit_distance("radiohaed", "radiohead", 2) == 1  # a swap is one edit


@pytest.mark.parametrize(
    ("typo", "word"),
    [
        ("beyonse", "beyonce"),
        ("radiohed", "radiohead"),
        ("coldpaly", "coldplay"),
        ("qeen", "queen"),
    ],
)
def test_one_edit_shares_a_deletion_variant(typo, word):
    assert deletions(typo) & deletions(word)
    assert query_grams(typo, max_edits(typo)) & grams(word)


@pytest.mark.parametrize(("typo", "word"), [("metalika", "metallica"), ("rammstain", "rammstein")])
def test_common_double_typos_share_a_skeleton(typo, word):
    assert skeleton(typo) == skeleton(word)
    assert query_grams(typo, 2) & grams(word)


def test_edits_tolerated_and_their_cost():
    assert [max_edits("x" * n) for n in (2, 3, 4, 5, 6, 12)] == [0, 0, 1, 1, 2, 2]
    assert max_edits("yuo", known=False) == 1 and max_edits("yu", known=False) == 0
    assert typo_cost(0, 8) == 0
    assert 0 < typo_cost(1, 9) < typo_cost(1, 4) < typo_cost(2, 6)


def test_the_vocabulary_holds_words_only():
    tokens = field_tokens("P!nk 周杰伦 Кино 2001 ok !!!")
    assert vocab_terms(tokens) == {"pnk", "pink", "кино"}
