"""Tests for month1_transformer/tokenizer.py: round trips, a hand-worked BPE example,
a brute-force cross-check of the training bookkeeping, and agreement with Hugging Face
`tokenizers` when it is given our merges."""

from __future__ import annotations

import json
from collections import Counter
from pydoc_data.topics import topics

import pytest
import regex

from month1_transformer.tokenizer import (
    GPT2_SPLIT_PATTERN,
    BytePairTokenizer,
    CharTokenizer,
    tokenizer_from_dict,
)

# English prose that ships with CPython, so the tests need no download.
PROSE = "\n\n".join(topics[key] for key in sorted(topics))

CODE = '''def fib(n: int) -> list[int]:
    """First n Fibonacci numbers."""
    a, b = 0, 1
    out = []
    for _ in range(n):
        out.append(a)
        a, b = b, a + b   # tuple swap
    return out

if __name__ == "__main__":
    print(fib(10), {"x": [1, 2.5e-3, None]}, 0xFF >> 2)
'''

NON_ASCII = "Xin chào thế giới! Tiếng Việt có dấu: ă â đ ê ô ơ ư. Emoji: 👋🌍🚀 — “quotes” café naïve 日本語"

HELD_OUT = [
    "The quick brown fox jumps over the lazy dog.",
    "It's 3.14159 o'clock; they'll say we've   won 42 times!\n\n  Indented\tline",
    "    for i in range(10):\n        x[i] += i ** 2  # squares",
    NON_ASCII,
]


@pytest.fixture(scope="module")
def prose_bpe() -> BytePairTokenizer:
    return BytePairTokenizer.train(PROSE[:20_000], vocab_size=400)


# ---------------------------------------------------------------- CharTokenizer


def test_char_round_trip():
    text = "hello, world!\nHELLO again."
    tok = CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text))
    assert tok.vocab_size == len(set(text))
    ids = tok.encode(text)
    assert ids[:2] == [tok.chars.index("h"), tok.chars.index("e")]
    assert tok.decode(ids) == text


def test_char_unknown_character_raises():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")


def test_char_dict_round_trip_and_checkpoint():
    tok = CharTokenizer.from_text("to be or not to be")
    d = json.loads(json.dumps(tok.to_dict()))  # must be plain JSON data
    rebuilt = tokenizer_from_dict(d)
    assert isinstance(rebuilt, CharTokenizer)
    assert rebuilt.encode("not to be") == tok.encode("not to be")
    with pytest.raises(ValueError, match="kind"):
        BytePairTokenizer.from_dict(d)


# ---------------------------------------------------------------- BPE round trips


@pytest.mark.parametrize("text", [PROSE[50_000:55_000], CODE, NON_ASCII], ids=["prose", "code", "non_ascii"])
def test_bpe_round_trip(prose_bpe: BytePairTokenizer, text: str):
    ids = prose_bpe.encode(text)
    assert all(0 <= i < prose_bpe.vocab_size for i in ids)
    assert prose_bpe.decode(ids) == text


def test_bpe_round_trip_when_merges_split_multibyte_characters():
    # Trained on non-ASCII text, merges are built from UTF-8 bytes and can cover parts of a
    # character; decoding the whole sequence must still give the exact string back.
    tok = BytePairTokenizer.train(NON_ASCII * 20 + CODE, vocab_size=320)
    assert any(max(tok.vocab[new_id]) >= 0x80 for _, new_id in tok.merges)
    for text in [NON_ASCII, CODE, "Chào 🌍!", ""]:
        assert tok.decode(tok.encode(text)) == text


def test_bpe_decode_partial_character_is_replaced():
    tok = BytePairTokenizer()
    ids = tok.encode("é")  # two bytes, no merges
    assert ids == [0xC3, 0xA9]
    assert tok.decode(ids[:1]) == "\ufffd"


# ---------------------------------------------------------------- BPE training


def test_bpe_hand_worked_example():
    # "aaabdaaabac" has no spaces, so the regex keeps it as one chunk.
    #   bytes: a a a b d a a a b a c         (a=97 b=98 c=99 d=100)
    #   pairs: (a,a)x4 (a,b)x2 (b,d) (d,a) (b,a) (a,c)
    #   1. (97,97) -> 256 = Z:  Z a b d Z a b a c   ("aaa" -> "Z a", left to right)
    #      pairs: (Z,a)x2 (a,b)x2 ...: a tie at 2, the smaller pair (97,98) wins
    #   2. (97,98) -> 257 = Y:  Z Y d Z Y a c
    #      pairs: (Z,Y)x2, everything else x1
    #   3. (256,257) -> 258:    258 d 258 a c
    text = "aaabdaaabac"
    assert regex.findall(GPT2_SPLIT_PATTERN, text) == [text]
    tok = BytePairTokenizer.train(text, vocab_size=259)
    assert tok.merges == [((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode(text) == [258, 100, 258, 97, 99]
    assert tok.decode(tok.encode(text)) == text


def test_bpe_train_verbose_and_progress(capsys):
    BytePairTokenizer.train("aaabdaaabac", vocab_size=259, verbose=True, progress=True)
    out = capsys.readouterr().out
    assert "merge 1/3: (97, 97) -> 256 b'aa'" in out
    assert "merge 3/3: (256, 257) -> 258 b'aaab'" in out


def test_bpe_stops_when_nothing_left_to_merge():
    tok = BytePairTokenizer.train("ab ab", vocab_size=300)
    # chunks "ab" and " ab": (a,b) -> 256, then (" ", 256) -> 257, then every chunk is one token
    assert tok.merges == [((97, 98), 256), ((32, 256), 257)]
    assert tok.vocab_size == 258


def _naive_train(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """Brute force: recount every pair of every chunk occurrence before each merge."""
    chunks = [list(c.encode("utf-8")) for c in regex.findall(GPT2_SPLIT_PATTERN, text)]
    merges = []
    for new_id in range(256, vocab_size):
        stats = Counter(pair for ids in chunks for pair in zip(ids, ids[1:]))
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        merges.append(pair)
        for k, ids in enumerate(chunks):
            out, i = [], 0
            while i < len(ids):
                if ids[i : i + 2] == list(pair):
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            chunks[k] = out
    return merges


def test_bpe_training_matches_brute_force():
    # The trainer updates pair counts incrementally; recounting from scratch must agree.
    text = PROSE[:3_000] + CODE + NON_ASCII + " aaaa aaaaa"
    tok = BytePairTokenizer.train(text, vocab_size=330)
    assert [pair for pair, _ in tok.merges] == _naive_train(text, 330)


def test_bpe_compresses_prose():
    train_text = PROSE[:50_000]
    tok = BytePairTokenizer.train(train_text, vocab_size=512)
    assert tok.vocab_size == 512
    held_out = PROSE[100_000:120_000]
    ratio = len(held_out.encode("utf-8")) / len(tok.encode(held_out))
    print(f"BPE-512 compression on held-out prose: {ratio:.2f} bytes/token")
    assert ratio > 1.5


def test_bpe_training_is_deterministic():
    text = PROSE[:5_000]
    assert BytePairTokenizer.train(text, 300).merges == BytePairTokenizer.train(text, 300).merges


def test_bpe_rejects_vocab_below_256():
    with pytest.raises(ValueError, match="256"):
        BytePairTokenizer.train("hello", vocab_size=100)


# ---------------------------------------------------------------- serialization


def test_bpe_dict_round_trip(prose_bpe: BytePairTokenizer):
    d = json.loads(json.dumps(prose_bpe.to_dict()))
    for rebuilt in (BytePairTokenizer.from_dict(d), tokenizer_from_dict(d)):
        assert isinstance(rebuilt, BytePairTokenizer)
        assert rebuilt.merges == prose_bpe.merges
        for text in HELD_OUT:
            assert rebuilt.encode(text) == prose_bpe.encode(text)


def test_bpe_save_load(prose_bpe: BytePairTokenizer, tmp_path):
    path = tmp_path / "bpe.json"
    prose_bpe.save(path)
    loaded = BytePairTokenizer.load(path)
    assert loaded.vocab_size == prose_bpe.vocab_size
    for text in HELD_OUT:
        assert loaded.encode(text) == prose_bpe.encode(text)


def test_tokenizer_dict_fits_in_torch_checkpoint(prose_bpe: BytePairTokenizer, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "ckpt.pt"
    torch.save({"tokenizer": prose_bpe.to_dict()}, path)
    d = torch.load(path, weights_only=True)["tokenizer"]  # plain data loads without pickle trust
    assert tokenizer_from_dict(d).encode(HELD_OUT[0]) == prose_bpe.encode(HELD_OUT[0])


def test_tokenizer_from_dict_unknown_kind():
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "wordpiece"})


# ---------------------------------------------------------------- Hugging Face agreement


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which HF's ByteLevel uses for token strings.

    Printable Latin-1 bytes map to themselves; the rest (control chars, space, ...) are shifted
    to code points 256 and up, so every byte becomes one visible character.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    table, shifted = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def test_bpe_encode_matches_huggingface_tokenizers():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    tok = BytePairTokenizer.train(PROSE[:20_000] + CODE + NON_ASCII * 5, vocab_size=400)
    b2u = bytes_to_unicode()

    def as_str(token: bytes) -> str:
        return "".join(b2u[b] for b in token)

    vocab = {as_str(token): i for i, token in tok.vocab.items()}
    assert len(vocab) == tok.vocab_size  # no two ids spell the same bytes, so HF's str->id map is exact
    merges = [(as_str(tok.vocab[a]), as_str(tok.vocab[b])) for (a, b), _ in tok.merges]
    hf = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges))
    # ByteLevel with use_regex=True splits with the same GPT-2 pattern we use.
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    for text in HELD_OUT + [PROSE[200_000:202_000]]:
        ours = tok.encode(text)
        assert hf.encode(text).ids == ours
        assert len(ours) < len(text.encode("utf-8"))  # the merges are really being used
