"""Does a client's comment say the problem is back? ("интернет снова пропадает")

A small rule over stemmed words, no model: a word that means "again / still / came back",
or "not" before a word that means "fixed / helped / works". It decides only whether the
client is *offered* the reopen button ("Не решено") with the thanks for their comment, so
a false alarm costs one button nobody presses; a miss leaves the comment as it was.
"""

from __future__ import annotations

from itertools import pairwise

from kb.text import stem, tokens

# "снова", "опять", "по-прежнему", "вернулась", "повторяется"; "again", "still", "back".
_AGAIN = frozenset({"снов", "опя", "прежн", "вернул", "повторя", "повтор",
                    "again", "still", "back", "recur"})
# Two words: "всё ещё", "до сих пор" ("ещё раз" is left out: it thanks as often).
_AGAIN_PAIRS = frozenset({("все", "ещ"), ("сих", "пор")})
# After "не"/"not": "не решено", "не помогло", "не работает", "не исправили", "не починили".
_FIXED = frozenset({"реш", "помогл", "помог", "работа", "исправ", "почин",
                    "fix", "help", "work"})
_NOT = frozenset({"не", "not", "didn", "doesn", "isn", "wasn", "t"})


def says_problem_is_back(text: str) -> bool:
    words = [stem(word) for word in tokens(text)]
    if any(word in _AGAIN for word in words):
        return True
    pairs = set(pairwise(words))
    if pairs & _AGAIN_PAIRS:
        return True
    return any(first in _NOT and second in _FIXED for first, second in pairs)
