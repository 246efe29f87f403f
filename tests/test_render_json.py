"""The attnviz.inspect/1 record: exact values, the schema, and what JSON must never hold."""

from __future__ import annotations

import json
import math
from importlib import resources

import jsonschema
import numpy as np
import pytest

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity, random_xavier
from attnviz_cli.render_json import dumps, inspection_record
from attnviz_cli.results import InspectionBatch, InspectOptions

SCHEMA = json.loads((resources.files("attnviz_cli") / "schemas" / "inspect-1.schema.json").read_text())

# "River bank!" over river = [1, 0], bank = [1, 1], causal, unscaled, by hand:
# scores [[1, masked], [1, 2]]; weights [[1, 0], [1/(1+e), e/(1+e)]]; outputs [1, 0], [1, e/(1+e)].
GOLDEN = (
    '{"schema":"attnviz.inspect/1","sentence":"River bank!","tokens":["river","bank"],'
    '"dropped":[{"token":"!","position":2,"reason":"oov"}],'
    '"config":{"heads":1,"d_model":2,"d_k":2,"d_v":2,"d_out":2,"scale":false,"causal":true,'
    '"projections":"identity","seed":null,"positions":"none","vectors":{"name":"tiny","dim":2,"vocab_size":4}},'
    '"inputs":[[1.0,0.0],[1.0,1.0]],'
    '"heads":[{"head":0,"scores":[[1.0,null],[1.0,2.0]],'
    '"weights":[[1.0,0.0],[0.2689414213699951,0.7310585786300049]],'
    '"output":[[1.0,0.0],[1.0,0.7310585786300049]],'
    '"summary":{"entropy_bits":[0.0,0.8399415379831693],"mean_entropy_bits":0.41997076899158464,'
    '"strongest":{"keys":[0,1],"weights":[1.0,0.7310585786300049]},'
    '"top":{"keys":[[0],[1,0]],"weights":[[1.0],[0.7310585786300049,0.2689414213699951]]}}}],'
    '"output":[[1.0,0.0],[1.0,0.7310585786300049]]}\n'
)


def test_golden_record_of_a_hand_computed_case(tiny):
    inspection = inspect_sentence("River bank!", tiny, identity(), InspectOptions(scale=False, causal=True))
    line = dumps(inspection_record(inspection)).decode()
    assert line == GOLDEN
    e = math.e
    p = 1 / (1 + e)
    record = json.loads(line)
    assert record["heads"][0]["weights"][1] == [p, e / (1 + e)]
    entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))  # of the second row; the first is one-hot: 0
    assert record["heads"][0]["summary"]["entropy_bits"] == pytest.approx([0.0, entropy], rel=1e-15)


def test_pretty_and_compact_hold_the_same_document(tiny):
    inspection = inspect_sentence("river bank", tiny, identity())
    pretty = dumps(inspection_record(inspection), pretty=True).decode()
    assert pretty.startswith('{\n  "schema": "attnviz.inspect/1",') and pretty.endswith("}\n")
    assert json.loads(pretty) == json.loads(dumps(inspection_record(inspection)))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", [1, 2, 5])
def test_records_validate_against_the_schema_and_agree_with_the_core(glove, heads, causal):
    inspection = inspect_sentence("The bank raised rates after the river flooded", glove, random_xavier(50, 3), InspectOptions(heads=heads, causal=causal))
    record = json.loads(dumps(inspection_record(inspection)))
    jsonschema.validate(record, SCHEMA)
    T = len(record["tokens"])
    assert len(record["heads"]) == heads
    for h, head in enumerate(record["heads"]):
        scores = np.array([[-np.inf if s is None else s for s in row] for row in head["scores"]], dtype=np.float32)
        np.testing.assert_array_equal(scores, inspection.attention.scores[h])
        np.testing.assert_array_equal(np.float32(head["weights"]), inspection.attention.weights[h])
        assert sum(s is None for row in head["scores"] for s in row) == (T * (T - 1) // 2 if causal else 0)
    np.testing.assert_array_equal(np.float32(record["output"]), inspection.attention.output)
    assert record["config"]["seed"] == 3 and record["config"]["d_out"] == 50


def test_float32_values_appear_exactly_as_glove_publishes_them(glove):
    record = dumps(inspection_record(inspect_sentence("the", glove, identity()))).decode()
    assert '"inputs":[[0.418,0.24968,-0.41242,0.1217,0.34527,' in record


def test_no_nan_or_infinity_ever_appears(glove):
    text = dumps(inspection_record(inspect_sentence("a b c d e f", glove, identity(), InspectOptions(causal=True, heads=10)))).decode()
    assert "NaN" not in text and "Infinity" not in text and "null" in text


def test_invisible_characters_are_escaped_yet_the_sentence_round_trips(tiny):
    sentence = "river\u202e bank\u0085\u200b"
    data = dumps(inspection_record(inspect_sentence(sentence, tiny, identity())))
    assert b"\\u202e" in data and b"\\u0085" in data and b"\\u200b" in data
    assert "\u202e".encode() not in data
    assert json.loads(data)["sentence"] == sentence


@pytest.mark.parametrize(
    ("heads", "causal", "projections", "fields"),
    [
        (1, False, "identity", ()), (1, True, "identity", ()), (5, False, "identity", ()),
        (2, False, "random", ()), (1, False, "random", ("inputs", "output", "heads.output")),
        (1, False, "identity", ("tokens", "weights")),
    ],
)
def test_the_stream_writer_writes_the_bytes_of_the_plain_record(glove, heads, causal, projections, fields):
    # The writer formats repeated input rows and a head output equal to the output once; the bytes
    # must be those of dumps(inspection_record(...)), record after record (the rows it remembers too).
    from attnviz_cli.render_json import RecordWriter

    chosen = identity() if projections == "identity" else random_xavier(glove.dim, seed=3)
    options = InspectOptions(heads=heads, causal=causal)
    writer = RecordWriter(fields)
    for sentence in ["the bank by the river", "the river bank", "money in the bank", "the the the"]:
        inspection = inspect_sentence(sentence, glove, chosen, options)
        assert writer.records(InspectionBatch.of(inspection))[0] == dumps(inspection_record(inspection, fields))


def test_the_stream_writer_starts_over_when_its_rows_fill_their_memory(glove, monkeypatch):
    from attnviz_cli import render_json

    monkeypatch.setattr(render_json, "ROW_TEXTS_BYTES", 2_000)  # about two rows of 50 numbers
    writer = render_json.RecordWriter()
    for sentence in ["the river bank", "money in the bank", "a cat sat on a mat"]:
        inspection = inspect_sentence(sentence, glove, identity())
        assert writer.records(InspectionBatch.of(inspection))[0] == dumps(inspection_record(inspection))
    assert len(writer._rows) == 5  # only the rows of "a cat sat on a mat": it started over before that record
    zero = inspect_sentence("the qqqzx bank", glove, identity(), InspectOptions(oov="zero"))
    assert writer.records(InspectionBatch.of(zero))[0] == dumps(inspection_record(zero))  # a zero vector is a row like any other


@pytest.mark.parametrize(("heads", "causal", "fields"), [(1, False, ()), (2, True, ()), (1, False, ("output", "inputs"))])
def test_a_batch_of_sentences_gets_the_records_each_would_get_alone(glove, heads, causal, fields):
    # Streams write whole batches (sentences of one length run together); every line must be the
    # record of that sentence's own Inspection, and in the batch's order.
    from attnviz_cli.pipeline import inspect_batches
    from attnviz_cli.render_json import RecordWriter

    sentences = ["the bank by the river", "the river bank", "money in the bank", "the the the", "the qqqzx bank"]
    options = InspectOptions(heads=heads, causal=causal, oov="zero")
    batches, errors = inspect_batches(sentences, glove, identity(), options)
    assert not errors and sorted(i for batch in batches for i in batch.positions) == list(range(len(sentences)))
    assert max(len(batch) for batch in batches) == 3  # "the river bank", "the the the", "the qqqzx bank"
    writer = RecordWriter(fields)
    for batch in batches:
        lines = writer.records(batch)
        for b, i in enumerate(batch.positions):
            alone = inspect_sentence(sentences[i], glove, identity(), options)
            assert lines[b] == dumps(inspection_record(alone, fields))


@pytest.mark.parametrize("kind", ["tiny-bert", "tiny-gemma3", "tiny-gpt2"])
def test_a_model_record_written_a_layer_at_a_time_is_the_same_bytes(kind):
    """`attn inspect --model -f json` writes a record's layers one by one (a large model's record is
    gigabytes of text): byte for byte what one dump of the whole record gives, pretty and compact, with
    --fields and --layer, and with text JSON must escape (a zero-width space)."""
    from pathlib import Path

    from attnviz_cli.models import load_model
    from attnviz_cli.models.pipeline import ModelShow, inspect_model
    from attnviz_cli.render_json import dumps, dumps_in_parts
    from attnviz_cli.render_model_json import keep_model_fields, model_record

    model = load_model(Path(__file__).resolve().parent / "models" / kind)
    for show in (ModelShow(), ModelShow(layer=1), ModelShow(focus="bank", rollout=True)):
        whole = model_record(inspect_model("the river bank \u200b flows", model, show))
        for fields in ((), ("tokens",), ("tokens", "heads.weights")):
            record = keep_model_fields(whole, fields)
            for pretty in (True, False):
                parts = list(dumps_in_parts(record, "layers", pretty=pretty))
                assert b"".join(parts) == dumps(record, pretty=pretty)
                if "layers" in record:
                    assert len(parts) == len(record["layers"]) + 2  # the start, each layer, the end
