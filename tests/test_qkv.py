"""--qkv (issue 27, item 12): each head's projected queries, keys and values, as tables and in JSON."""

from __future__ import annotations

import io
import json

import numpy as np
from numpy.testing import assert_allclose
from rich.console import Console

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity
from attnviz_cli.render_table import inspection_renderables
from attnviz_cli.results import InspectOptions

from .conftest import run


def test_identity_projections_show_q_k_and_v_as_the_inputs_split_by_head(tiny):
    # tiny's vectors are 2-d: two heads of d_k 1, so head 0's column is each vector's first number, head 1's
    # its second; Q, K and V are the inputs themselves (no projection): river (1, 0), bank (1, 1)
    result = inspect_sentence("river bank", tiny, identity(), InspectOptions(heads=2))
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(inspection_renderables(result, dims=4, qkv=True))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    head1_values = out.split("head 1 of 2 values V (the inputs times W_V)\n")[1].split("\n\n")[0]
    assert head1_values.splitlines() == [
        "token        [0]",
        "────────────────",
        "0 river    0.000",
        "1 bank     1.000",
    ]
    assert out.index("head 0 of 2 queries Q") < out.index("head 0 of 2 keys K") < out.index("head 0 of 2 values V") < out.index("head 0 of 2 scores")
    assert "head 1 of 2 queries Q" in out and "head 0 of 2 queries Q" in out


def test_without_qkv_the_tables_are_as_before(tiny):
    result = inspect_sentence("river bank", tiny, identity(), InspectOptions(heads=2))
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(inspection_renderables(result, dims=4))
    assert "queries Q" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_json_queries_keys_and_values_are_the_inputs_times_the_projections_split_by_head():
    # random projections, seed 7, 5 heads: Q = X W_Q, K = X W_K, V = X W_V from the record's own inputs and
    # projections drawn the same way here, head h being columns h d_k .. (h + 1) d_k; float32 products
    # in another order than attnviz's: rtol 1e-5
    from attnviz_cli.projections import random_xavier

    args = ["inspect", "the river bank flooded", "--heads", "5", "--projections", "random", "--seed", "7", "-f", "json"]
    result = run(*args, "--fields", "inputs,heads.queries,heads.keys,heads.values,scores")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    x = np.array(record["inputs"], dtype=np.float64)
    p = random_xavier(x.shape[1], 7)
    d_k = x.shape[1] // 5
    for h, head in enumerate(record["heads"]):
        columns = slice(h * d_k, (h + 1) * d_k)
        for name, w in (("queries", p.wq), ("keys", p.wk), ("values", p.wv)):
            assert_allclose(head[name], x @ np.asarray(w, np.float64)[:, columns], rtol=1e-5, atol=1e-6)
        q, k = np.array(head["queries"]), np.array(head["keys"])
        assert_allclose(head["scores"], q @ k.T / np.sqrt(d_k), rtol=1e-5, atol=1e-6)  # the scores are made of them
    assert "queries" not in json.loads(run(*args).stdout)["heads"][0]  # only when asked for


def test_qkv_asks_for_tables():
    result = run("inspect", "river bank", "--qkv", "-f", "json")
    assert result.exit_code == 2
    assert "--qkv adds tables; --format json keeps them with --fields heads.queries,heads.keys,heads.values" in result.stderr
