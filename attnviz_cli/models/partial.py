"""A corpus pass split among jobs: shards of a corpus (``attn heads --shard i/n``), the partial file each
writes (``-f partial``: its :class:`~.corpus.PatternSums` and what they came from), and ``attn merge``,
which adds them up into the report one run over the whole corpus gives.

The partial file (docs/formats.md, "Partial files") is JSON, ``attnviz.heads-partial/1``: it is
untrusted when read back (a job on another machine wrote it), so it is read bounded (PARTIAL_BYTES) and
every field checked before a sum is added.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AttnvizError, quoted
from .corpus import CorpusHeads, PatternSums

if TYPE_CHECKING:
    from .model import Model

PARTIAL_SCHEMA = "attnviz.heads-partial/1"
PARTIAL_BYTES = 64 << 20  # a partial file's most bytes (an 80-layer x 64-head model's, with three probes, is ~4 MB)
SHARD_LINES = 1000  # a shard of FILE takes every n-th run of this many lines (lines 1-1000 are chunk 0)
FINGERPRINT_BYTES = 16 << 20  # of each model file hashed: its header (safetensors', GGUF's metadata) and more
IDENTITY = ("architecture", "layers", "heads", "kv_heads", "d_model", "d_head", "dtype", "fingerprint")  # what must match to merge
MOST_SHARDS = 1_000_000


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (from 1, as a Slurm array ``--array=1-N`` or a matrix ``[1, ..., N]``
    counts): it takes chunk k of the input (of :data:`SHARD_LINES` lines, or
    :data:`~.probe_inputs.SEQUENCE_CHUNK` random sequences) when k % count == index - 1."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``i/n``, 1 <= i <= n (a ValueError saying why otherwise)."""
        found = re.fullmatch(r"\s*(\d{1,7})\s*/\s*(\d{1,7})\s*", text)
        if found is None:
            raise ValueError(f"{text!r} is not i/n (shard i of n, e.g. 3/10)")
        index, count = int(found[1]), int(found[2])
        if not 1 <= count <= MOST_SHARDS:
            raise ValueError(f"{text!r}: n must be 1 to {MOST_SHARDS:,}")
        if not 1 <= index <= count:
            raise ValueError(f"{text!r}: shards count from 1, so i must be 1 to {count} (Slurm: --array=1-{count})")
        return cls(index, count)

    def takes(self, chunk: int) -> bool:
        return chunk % self.count == self.index - 1

    def lines(self, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
        """The numbered lines (numbered from 1, blank ones counted) of this shard's chunks."""
        return ((line, text) for line, text in lines if self.takes((line - 1) // SHARD_LINES))

    def share(self, total: int, chunk: int = SHARD_LINES) -> int:
        """How many of ``total`` lines (or sequences) fall in this shard's chunks."""
        return sum(min(chunk, total - start) for start in range(chunk * (self.index - 1), total, chunk * self.count))

    def record(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def fingerprint(model: Model) -> str:
    """sha256 over a model's files (config.json and its weights, or its GGUF file): each one's name,
    size and first :data:`FINGERPRINT_BYTES` (its header is at its start): two partials of different
    models (or of one model's different quantisations) differ here, wherever each job kept the files."""
    from .model import weights_files

    path = Path(model.folder)
    files = [path] if path.is_file() else [path / "config.json", *weights_files(path)]
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as stream:
            digest.update(f"{file.name}\0{stream.seek(0, 2)}\0".encode())
            stream.seek(0)
            digest.update(stream.read(FINGERPRINT_BYTES))
    return f"sha256:{digest.hexdigest()}"


def partial_record(
    model: Model, sums: PatternSums, *, skipped: int, shard: Shard | None, truncate: bool, seconds: float,
    inputs: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The partial file of a corpus pass's ``sums`` (shard ``shard``; None: the whole input, 1/1) that
    took ``seconds``."""
    from .. import __version__
    from ..render_model_json import config_record

    c = model.config
    return {
        "schema": PARTIAL_SCHEMA,
        "attnviz": __version__,
        "model": {**config_record(c), "max_positions": c.max_positions, "fingerprint": fingerprint(model)},
        "shard": (shard or Shard(1, 1)).record(),
        "probes": list(sums.probes),
        "inputs": None if inputs is None else dict(inputs),
        "truncate": truncate,
        "texts": sums.texts, "tokens": sums.tokens, "skipped": skipped, "truncated": sums.truncated, "seconds": seconds,
        "sums": {name: {"shape": list(values.shape), "values": values.ravel().tolist()} for name, values in sums.arrays.items()},
    }


@dataclass(frozen=True, slots=True, eq=False)
class Partial:
    """A partial file, read and checked."""

    path: Path
    model: dict[str, Any]  # config_record's fields, max_positions and fingerprint
    shard: Shard
    settings: dict[str, Any]  # probes, inputs, truncate: what must match to merge
    skipped: int
    seconds: float  # the shard's pass took
    sums: PatternSums


def read_partial(path: Path) -> Partial:
    """A partial file, refused (one line naming it) unless it is one attnviz wrote: this version of the
    format, every field of its type, every sum of its model's shape, finite and not negative."""
    from ..small_files import read_json

    record = read_json(path, PARTIAL_BYTES, "partial file")
    name = quoted(str(path))

    def bad(why: str) -> AttnvizError:
        return AttnvizError(f"partial file {name} {why}")

    if not isinstance(record, dict) or not isinstance(record.get("schema"), str) or not record["schema"].startswith("attnviz.heads-partial/"):
        raise bad("is not an attn heads partial file (no 'schema': 'attnviz.heads-partial/...')")
    if record["schema"] != PARTIAL_SCHEMA:
        raise bad(f"is format {quoted(record['schema'])}; this attn reads {PARTIAL_SCHEMA}")

    def field(where: dict[str, Any], key: str, kind: type, what: str) -> Any:
        value: Any = where.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):  # JSON's true is no count
            raise bad(f"has no valid {what} ({key!r})")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**53:
            raise bad(f"has an out-of-range {what} ({key!r}: {value})")
        return value

    model = field(record, "model", dict, "model")
    for key in ("architecture", "name", "dtype", "fingerprint"):
        field(model, key, str, f"model {key}")
    for key in ("layers", "heads", "kv_heads", "d_model", "d_head", "max_positions"):
        if field(model, key, int, f"model {key}") < 1:
            raise bad(f"has no valid model {key} ({model[key]})")
    if model.get("revision") is not None:
        field(model, "revision", str, "model revision")
    from .model import PAGES

    if model["architecture"] not in PAGES or model["dtype"] not in ("float32", "float64") or model["heads"] % model["kv_heads"]:
        raise bad(f"names a model attnviz does not run ({quoted(model['architecture'])}, {quoted(model['dtype'])})")
    shard_record = field(record, "shard", dict, "shard")
    index, count = field(shard_record, "index", int, "shard index"), field(shard_record, "count", int, "shard count")
    if not 1 <= index <= count <= MOST_SHARDS:
        raise bad(f"has no valid shard ({index}/{count})")
    probes = field(record, "probes", list, "probes")
    from .probes import PROBES

    if any(p not in PROBES for p in probes) or len(set(probes)) != len(probes):
        raise bad("names probes attnviz does not have")
    inputs = record.get("inputs")
    if inputs is not None and not (isinstance(inputs, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in inputs.values())):
        raise bad("has no valid inputs ('inputs')")
    truncate = field(record, "truncate", bool, "truncate setting")
    texts, tokens = field(record, "texts", int, "text count"), field(record, "tokens", int, "token count")
    skipped, truncated = field(record, "skipped", int, "skipped count"), field(record, "truncated", int, "truncated count")
    seconds = record.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 1e12:
        raise bad("has no valid time ('seconds')")
    shapes = PatternSums.shapes(model["layers"], model["heads"], len(probes))
    given = field(record, "sums", dict, "sums")
    if set(given) != set(shapes):
        raise bad(f"has sums {sorted(given)}, not the {sorted(shapes)} of this format")
    arrays = {}
    for key, shape in shapes.items():  # each checked against the file's own numbers before an array is made
        entry, size = given[key], math.prod(shape)
        if not isinstance(entry, dict) or entry.get("shape") != list(shape) or not isinstance(entry.get("values"), list):
            raise bad(f"has sums {key!r} that are not of its model's shape {list(shape)}")
        if len(entry["values"]) != size or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry["values"]):
            raise bad(f"has sums {key!r} that are not {size:,} numbers")
        values = np.array(entry["values"], dtype=np.float64).reshape(shape)
        if not np.isfinite(values).all() or (values < 0).any():
            raise bad(f"has sums {key!r} that are not all finite and at least 0")
        arrays[key] = values
    if (arrays["sink_texts"] > texts).any() or (arrays["sink_k_texts"] > texts).any():
        raise bad("counts more texts with sinks than texts")
    sums = PatternSums(0, 0, tuple(probes))
    sums.arrays, sums.texts, sums.tokens, sums.truncated = arrays, texts, tokens, truncated
    settings = {"probes": probes, "inputs": inputs, "truncate": truncate}
    return Partial(path, model, Shard(index, count), settings, skipped, float(seconds), sums)


def merge_partials(partials: list[Partial], note: Callable[[str], None]) -> CorpusHeads:
    """The report of the shards ``partials`` hold together: refused (one line) when they are of other
    models, settings or shard counts, or a shard comes twice; a ``note`` names shards that are missing
    (the report is of those given: its text count says how many went in)."""
    from .model import ModelConfig

    partials = sorted(partials, key=lambda p: p.shard.index)  # the lowest shard's name and revision: the same report whatever the order given
    first = partials[0]
    for other in partials[1:]:
        pair = f"{quoted(str(first.path))} and {quoted(str(other.path))}"
        for key in IDENTITY:
            if other.model[key] != first.model[key]:
                raise AttnvizError(f"{pair} are partials of different models ({key}: {first.model[key]!r} and {other.model[key]!r})")
        for key, value in first.settings.items():
            if other.settings[key] != value:
                raise AttnvizError(f"{pair} were run with different {key} ({value!r} and {other.settings[key]!r})")
        if other.shard.count != first.shard.count:
            raise AttnvizError(f"{pair} split the input differently (shards of {first.shard.count} and of {other.shard.count})")
    seen: dict[int, Partial] = {}
    for partial in partials:
        if partial.shard.index in seen:
            raise AttnvizError(
                f"{quoted(str(seen[partial.shard.index].path))} and {quoted(str(partial.path))} are both shard {partial.shard.index}/{partial.shard.count}"
            )
        seen[partial.shard.index] = partial
    count = first.shard.count
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        note(f"merged {len(seen)} of {count} shards; missing: {shown} (the report is of the texts of those given)")
    m = first.model
    sums = PatternSums(m["layers"], m["heads"], tuple(first.settings["probes"]))
    for partial in partials:  # in shard order: the same sums each time
        sums.merge(partial.sums)
    config = ModelConfig(m["name"], m["architecture"], m["layers"], m["heads"], m["d_model"], m["max_positions"], 0.0, 0, m["dtype"],
                         m.get("revision"), m["kv_heads"], m["d_head"])
    skipped = sum(p.skipped for p in partials)
    seconds = sum(p.seconds for p in partials)  # the shards' work, added up (a table's "in ... s")
    return CorpusHeads.of(config, sums, skipped, seconds, first.settings["inputs"])
