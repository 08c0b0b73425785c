"""Small shared pieces: configs from the command line, atomic checkpoints, corpora, runtime."""

from dataclasses import dataclass, field

import pytest
import torch

from shared import checkpoint, corpora
from shared.config import parse_config
from shared.runtime import default_threads, pick_device, set_threads


@dataclass
class Demo:
    width: int = field(default=8, metadata={"help": "model width"})
    lr: float = 1e-3
    name: str = "run"
    fused: bool = True
    dropout: float | None = None


def test_config_defaults_and_overrides():
    assert parse_config(Demo, []) == Demo()
    cfg = parse_config(Demo, ["--width", "16", "--lr", "3e-4", "--fused", "false", "--dropout", "0.1"])
    assert cfg == Demo(width=16, lr=3e-4, fused=False, dropout=0.1)


@dataclass
class WiderDemo(Demo):
    heads: int = 4


def test_config_options_for_what_a_subclass_adds():
    import argparse

    from shared.config import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Demo)
    add_config_arguments(parser, WiderDemo, exclude=Demo)  # would clash on --width without `exclude`
    args = parser.parse_args(["--width", "16", "--heads", "2"])
    assert config_from_args(WiderDemo, args) == WiderDemo(width=16, heads=2)
    assert config_from_args(Demo, args) == Demo(width=16)


def test_config_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        parse_config(Demo, ["--width", "wide"])
    assert "invalid int value" in capsys.readouterr().err


def test_atomic_save_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"step": 1}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        checkpoint.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_offline_corpora_exist_everywhere():
    prose = corpora.stdlib_prose()
    assert len(prose) > 300_000 and "function" in prose
    code = corpora.stdlib_code(max_chars=200_000)
    assert len(code) == 200_000 and "def " in code
    assert corpora.load_corpus("stdlib", max_chars=1000) == prose[:1000]


def test_shakespeare_from_a_local_path(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    assert corpora.tiny_shakespeare(path).startswith("First Citizen")
    with pytest.raises(corpora.CorpusUnavailable, match="no file"):
        corpora.tiny_shakespeare(tmp_path / "missing.txt")
    with pytest.raises(corpora.CorpusUnavailable, match="neither a corpus name"):
        corpora.load_corpus("no-such-corpus")


def test_threads_and_device(monkeypatch):
    monkeypatch.setenv("HYBRID_AI_THREADS", "1")
    assert default_threads() == 1
    before = torch.get_num_threads()
    assert set_threads() == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(before)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in {"cpu", "cuda", "mps"}


def test_doctor_finds_no_fail():
    from shared.doctor import run_checks

    failed = [c for c in run_checks() if c.status == "FAIL"]
    assert not failed, "\n".join(f"{c.name}: {c.detail} (fix: {c.fix})" for c in failed)


def test_memory_peaks_see_an_allocation():
    import mmap
    import time

    from shared.memory import MIB, PeakRSS, peak_rss_bytes, rss_bytes

    with PeakRSS(interval=0.005) as phase:
        block = mmap.mmap(-1, 64 * MIB)  # fresh pages straight from the OS, not an allocator's free list
        block.write(b"x" * (64 * MIB))  # touched, so resident
        time.sleep(0.1)  # the sampler sees it
        block.close()  # and gone again
    assert phase.peak >= rss_bytes() + 48 * MIB  # the phase's own peak, not what is left after it
    assert peak_rss_bytes() >= phase.peak - MIB  # the process peak includes the phase


def _demo_parser(tmp_path):
    import argparse

    from shared.config import add_config_arguments, add_config_file_argument

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Demo)
    add_config_file_argument(parser, tmp_path)
    return parser


def test_config_file_sets_values_and_flags_override_it(tmp_path):
    from shared.config import config_from_args, parse_args

    (tmp_path / "wide.toml").write_text('width = 64\nfused = false\nname = "preset"\n')
    parser = _demo_parser(tmp_path)
    assert "presets: wide" in parser.format_help()
    args = parse_args(parser, ["--config", "wide", "--width", "32"], tmp_path)  # a preset by name
    assert config_from_args(Demo, args) == Demo(width=32, fused=False, name="preset")
    args = parse_args(_demo_parser(tmp_path), ["--config", str(tmp_path / "wide.toml")], tmp_path)
    assert config_from_args(Demo, args) == Demo(width=64, fused=False, name="preset")


@pytest.mark.parametrize("text, message", [
    ("widht = 3\n", "unknown option(s) ['widht']"),
    ("width = [\n", "not valid TOML"),
    ("[model]\nwidth = 3\n", "expected flat"),
])
def test_config_file_errors_are_one_clear_line(tmp_path, capsys, text, message):
    from shared.config import parse_args
    from shared.errors import UserError

    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises((SystemExit, UserError)) as info:
        parse_args(_demo_parser(tmp_path), ["--config", str(tmp_path / "bad.toml")], tmp_path)
    said = str(info.value) if isinstance(info.value, UserError) else capsys.readouterr().err
    assert message in said
    with pytest.raises(UserError, match="no such file"):
        parse_args(_demo_parser(tmp_path), ["--config", "nowhere"], tmp_path)


def test_derived_fields_are_no_options():
    from month1_transformer.model import GPTConfig

    with pytest.raises(SystemExit):
        parse_config(GPTConfig, ["--vocab-size", "100"])
    assert parse_config(GPTConfig, []) == GPTConfig()


class _Exploit:
    """A pickle that would run code when loaded (it creates a file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_a_malicious_pickle_is_refused(tmp_path):
    from shared.errors import UserError

    marker = tmp_path / "pwned"
    torch.save({"model": {}, "payload": _Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="refused"):
        checkpoint.load(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a"):
        checkpoint.load(tmp_path / "junk.pt")
