"""The attn command end to end: CliRunner runs that parse the output, errors, and real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources

import jsonschema
import numpy as np
import pytest
import typer
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

from attnviz_cli import __version__, self_attention
from attnviz_cli.cli import app, app_for

from .conftest import FILE_VECTORS, readline_within, run

SENTENCE = "I sat on the river bank"


def run_json(*args, input=None):
    result = run(*args, "--format", "json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def glove_rows(glove, tokens):
    return glove.vectors[[glove.index[t] for t in tokens]]


# ---- what it computes ----------------------------------------------------------------------------


def test_json_output_is_attention_over_the_glove_vectors(glove):
    record = run_json("inspect", SENTENCE)
    assert record["tokens"] == ["i", "sat", "on", "the", "river", "bank"]
    x = glove_rows(glove, record["tokens"])
    assert_array_equal(np.float32(record["inputs"]), x)
    expected = self_attention(x)
    assert_array_equal(np.float32(record["heads"][0]["weights"]), expected.weights[0])
    assert_array_equal(np.float32(record["output"]), expected.output)
    # and, independently: one head with identity projections is softmax(x x^T / sqrt(50)) x
    s = x.astype(np.float64) @ x.T.astype(np.float64) / np.sqrt(50)
    w = np.exp(s - s.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    assert_allclose(record["output"], w @ x, rtol=2e-5, atol=2e-6)


def test_bank_beside_river_and_beside_money_comes_out_different(glove):
    river = run_json("inspect", "the river bank")
    money = run_json("inspect", "the money bank")
    assert river["inputs"][2] == money["inputs"][2]  # the same word going in...
    in_river, in_money = np.array(river["output"][2]), np.array(money["output"][2])
    assert not np.allclose(in_river, in_money)  # ...comes out as two vectors,

    def cos(a, word):
        b = glove.vectors[glove.index[word]]
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    # each pulled towards its own context: bank beside money is nearer "money", beside river nearer "river"
    assert cos(in_money, "money") > cos(in_river, "money") + 0.04
    assert cos(in_river, "river") > cos(in_money, "river") + 0.04


def test_heads_split_the_embedding(glove):
    record = run_json("inspect", SENTENCE, "--heads", "5")
    assert (record["config"]["heads"], record["config"]["d_k"], len(record["heads"])) == (5, 10, 5)
    x = glove_rows(glove, record["tokens"])
    for h in range(5):
        part = x[:, 10 * h : 10 * (h + 1)]
        assert_array_equal(np.float32(record["heads"][h]["weights"]), self_attention(part).weights[0])


def test_no_scale_gives_raw_dot_products(glove):
    record = run_json("inspect", "river bank", "--no-scale")
    x = glove_rows(glove, ["river", "bank"]).astype(np.float64)
    assert_allclose(record["heads"][0]["scores"], x @ x.T, rtol=1e-5)
    assert record["config"]["scale"] is False


def test_causal_masks_are_null(glove):
    record = run_json("inspect", "river bank flows", "--causal")
    assert record["heads"][0]["scores"][0][1:] == [None, None]
    assert record["heads"][0]["weights"][0] == [1.0, 0.0, 0.0]


def test_random_projections_are_reproducible_by_seed():
    first = run("inspect", SENTENCE, "--projections", "random", "--seed", "11", "-f", "json").stdout
    again = run("inspect", SENTENCE, "--projections", "random", "--seed", "11", "-f", "json").stdout
    other = run("inspect", SENTENCE, "--projections", "random", "--seed", "12", "-f", "json").stdout
    assert first == again and first != other
    assert json.loads(first)["config"]["projections"] == "random"


def test_weights_file_is_used(tmp_path, glove):
    rng = np.random.default_rng(0)
    w = {k: rng.standard_normal((50, 20)).astype(np.float32) for k in ("wq", "wk", "wv")} | {"wo": rng.standard_normal((20, 3))}
    np.savez(tmp_path / "w.npz", **w)
    record = run_json("inspect", "river bank", "--weights", str(tmp_path / "w.npz"), "--heads", "2")
    expected = self_attention(glove_rows(glove, ["river", "bank"]), heads=2, **w)
    assert_allclose(record["output"], expected.output, rtol=1e-6)
    assert (record["config"]["d_k"], record["config"]["d_out"], record["config"]["projections"]) == (10, 3, "weights")


@pytest.mark.slow
def test_other_vectors_by_option_and_environment(glove_txt):
    by_option = run_json("inspect", "the river bank", "--vectors", str(glove_txt))
    assert by_option["config"]["vectors"] == {"name": glove_txt.name, "dim": 4, "vocab_size": 6}
    assert_array_equal(np.float32(by_option["inputs"]), FILE_VECTORS[[0, 1, 2]])
    by_env = run("inspect", "the river bank", "-f", "json", env={"ATTN_VECTORS": str(glove_txt)})
    assert json.loads(by_env.stdout) == by_option


# ---- stdin and formats -----------------------------------------------------------------------------


def test_dash_reads_the_sentence_from_stdin():
    assert run_json("inspect", "-", input="the river\nbank\n")["sentence"] == "the river\nbank"


def test_jsonl_reads_one_sentence_per_line_and_keeps_order():
    result = run("inspect", "-", "--format", "jsonl", input="the river bank\n\n  \nthe money bank\nbank\n")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["sentence"] for r in records] == ["the river bank", "the money bank", "bank"]
    assert result.stdout.count("\n") == 3


def test_jsonl_stops_at_a_bad_line_after_the_good_ones():
    result = run("inspect", "-", "--format", "jsonl", input="river bank\nzzzq\nmoney\n")
    assert result.exit_code == 1
    assert [json.loads(line)["sentence"] for line in result.stdout.splitlines()] == ["river bank"]
    assert result.stderr == "attn: error: line 2: the sentence 'zzzq' has no word that is in the vectors 'glove-6b-50d-50k'\n"


def test_unknown_words_are_noted_on_stderr_and_listed_as_dropped():
    result = run("inspect", "the river qzxv bank", "-f", "json")
    assert result.stderr == "attn: unknown word 'qzxv' (position 2) skipped\n"
    assert json.loads(result.stdout)["dropped"] == [{"token": "qzxv", "position": 2, "reason": "oov"}]


def test_table_output_shows_the_tables_without_colour_in_a_pipe():
    result = run("inspect", SENTENCE, "--dims", "3")
    assert result.exit_code == 0
    assert "head 0 of 1 weights (softmax, rows sum to 1)" in result.stdout
    assert "3 of 50 components (--dims)" in result.stdout and "[2]" in result.stdout and "[3]" not in result.stdout
    assert "\x1b[" not in result.stdout


def test_colour_follows_force_color_and_no_color():
    coloured = run("inspect", "river bank", env={"FORCE_COLOR": "1", "NO_COLOR": None, "TERM": "xterm-256color"})
    assert "\x1b[" in coloured.stdout and "48;" in coloured.stdout
    plain = run("inspect", "river bank", env={"FORCE_COLOR": "1", "NO_COLOR": "1", "TERM": "xterm-256color"})
    assert "48;" not in plain.stdout


# ---- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "   "], "the sentence is empty"),
        (["inspect", "qzxv vvqx"], "the sentence 'qzxv vvqx' has no word that is in the vectors 'glove-6b-50d-50k'"),
        (["inspect", "river bank", "--heads", "3"], "--heads 3 does not divide the 50 dimensions of 'glove-6b-50d-50k'; try 1, 2, 5, 10, 25 or 50"),
        (["inspect", "river qzxv", "--oov", "error"], "unknown word 'qzxv' at position 1 is not in 'glove-6b-50d-50k'"),
        (["inspect", "a b c d", "--max-tokens", "3"], "the sentence has 4 tokens, more than the limit of 3 (--max-tokens)"),
        (["inspect", "river", "--vectors", "/no/such/file.txt"], "vectors file '/no/such/file.txt' does not exist"),
        (["inspect", "river", "--weights", "/no/such/w.npz"], "weights file '/no/such/w.npz' does not exist"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"attn: error: {message}\n"


def test_the_default_vectors_can_be_named():
    named = run("inspect", "river bank", "-f", "json", "--vectors", "glove-6b-50d-50k")
    assert named.exit_code == 0 and named.stdout == run("inspect", "river bank", "-f", "json").stdout
    assert json.loads(named.stdout)["config"]["vectors"]["name"] == "glove-6b-50d-50k"


def test_a_bad_weights_shape_names_the_file(tmp_path):
    np.savez(tmp_path / "w.npz", wq=np.ones((3, 3)), wk=np.ones((3, 3)), wv=np.ones((3, 3)))
    result = run("inspect", "river", "--weights", str(tmp_path / "w.npz"))
    assert result.exit_code == 1
    assert "w.npz': wq must have shape (50, h*d), got (3, 3) (d_model 50, 1 head)" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "x", "--format", "xml"],
        ["inspect", "x", "--heads", "0"],
        ["inspect", "x", "--oov", "maybe"],
        ["inspect", "x", "--weights", "w.npz", "--projections", "random"],
        ["inspect"],
        ["inspect", "x", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == "" and "Error" in result.stderr


def test_an_internal_error_is_one_line_too(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("attnviz_cli.cli.static.inspect_one", broken)
    result = run("inspect", "river")
    assert result.exit_code == 1
    assert result.stderr == "attn: internal error: RuntimeError: boom (set ATTN_DEBUG=1 for a traceback; please report it)\n"


# ---- conventions -------------------------------------------------------------------------------------


def test_version_is_the_installed_packages():
    # One source: pyproject.toml reads the version from the package, so what pip installed is what
    # --version prints (without importlib.metadata, which costs a cold start ~35 ms).
    from importlib.metadata import version

    result = run("--version")
    assert result.stdout == f"attn {__version__}\n" and __version__ == version("attnviz-cli")


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "river bank", "-f", "json"],
        ["inspect", "--help"],
        ["inspect", "x", "--heads", "0"],
        ["compare", "the river bank", "the money bank", "--focus", "bank", "-f", "json"],
        ["vectors", "--help"],
        ["vectors", "list"],
        ["schema", "--help"],
    ],
)
def test_the_app_built_for_one_command_answers_as_the_whole_app(args):
    # attn builds only the command it runs (app_for): same output, same exit, for runs, help and errors
    lean, whole = (CliRunner().invoke(a, args) for a in (app_for(args), app))
    assert (lean.exit_code, lean.stdout, lean.stderr) == (whole.exit_code, whole.stdout, whole.stderr)
    assert lean.exit_code in (0, 2) and lean.stdout + lean.stderr


def test_the_whole_app_answers_what_names_no_command():
    assert [app_for(args) is app for args in ([], ["--help"], ["--version"], ["inspec", "x"])] == [True] * 4
    lean = app_for(["model", "list"])
    assert [g.name for g in lean.registered_groups] == ["model"] and lean.registered_commands == []
    assert "inspect" in run("--help").stdout and "Did you mean 'inspect'?" in run("inspec", "x").stderr


def test_help_has_examples():
    result = run("inspect", "--help")
    assert result.exit_code == 0
    assert 'attn inspect "I sat on the river bank"' in result.stdout and "--format jsonl" in result.stdout


def test_every_command_and_option_has_help():
    group = typer.main.get_command(app)
    assert group.help
    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            assert param.param_type_name in ("option", "argument")
            assert getattr(param, "help", None), f"{name} {param.name}"


def test_python_dash_m_runs_the_app():
    done = subprocess.run([sys.executable, "-m", "attnviz_cli", "inspect", "river bank", "-f", "json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["tokens"] == ["river", "bank"]


def test_a_closed_pipe_ends_quietly():
    sentences = "".join(f"the river bank {i}\n" for i in range(3000)).encode()
    producer = subprocess.Popen(
        [sys.executable, "-m", "attnviz_cli", "inspect", "-", "-f", "jsonl"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    producer.stdin.write(sentences)
    producer.stdin.close()
    first = readline_within(producer.stdout)
    producer.stdout.close()  # like `| head -1`
    producer.wait(timeout=60)
    stderr = producer.stderr.read().decode()
    assert json.loads(first)["sentence"] == "the river bank 0"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert stderr == ""


# ---- focus, neighbours and summaries --------------------------------------------------------------


def test_focus_is_in_json_and_agrees_with_the_matrices():
    record = run_json("inspect", "the river bank by the bank", "--focus", "bank@2", "--heads", "2", "--causal")
    (focus,) = record["focus"]
    assert (focus["position"], focus["token"]) == (5, "bank")
    for h, step in enumerate(focus["heads"]):
        assert step["weights"] == record["heads"][h]["weights"][5]
        assert step["scores"] == record["heads"][h]["scores"][5]
        assert_allclose(np.sum(step["contributions"], axis=0), step["output"], rtol=1e-5, atol=1e-6)
        assert step["output"] == record["heads"][h]["output"][5]


def test_focus_with_a_weights_file_and_other_vectors(tmp_path, glove_txt):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "w.npz", wq=rng.standard_normal((4, 4)), wk=rng.standard_normal((4, 4)), wv=rng.standard_normal((4, 2)))
    record = run_json("inspect", "the river bank", "--vectors", str(glove_txt), "--weights", str(tmp_path / "w.npz"), "--focus", "1")
    step = record["focus"][0]["heads"][0]
    assert len(step["query"]) == 4 and len(step["output"]) == 2
    assert record["focus"][0]["token"] == "river"


def test_focus_and_neighbors_in_a_jsonl_stream():
    result = run("inspect", "-", "-f", "jsonl", "--focus", "bank", "--neighbors", "3", input="the river bank\nthe money bank\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["focus"][0]["position"] for r in records] == [2, 2]
    assert [len(r["neighbors"][0]["after"]) for r in records] == [3, 3]


def test_focus_table_shows_the_steps():
    result = run("inspect", "the river bank", "--focus", "bank", "--neighbors", "3")
    for heading in ("1. the query of 'bank' and every key", "2. q·k for every key, divided by √50 = 7.071; 3. softmax",
                    "4. weight × value, summed: the output of 'bank'", "where the meaning moved", "head 0 of 1 summary"):
        assert heading in result.stdout


def test_an_unknown_focus_word_lists_the_tokens():
    result = run("inspect", "the river bank", "--focus", "money")
    assert result.exit_code == 1
    assert result.stderr == "attn: error: --focus 'money' is not one of the tokens '0:the 1:river 2:bank'\n"


def test_neighbors_with_random_projections_say_why_not():
    # a usage error, found before any vectors are loaded (the file named here does not exist)
    result = run("inspect", "the river bank", "--neighbors", "3", "--projections", "random", "--vectors", "/no/such.txt")
    assert result.exit_code == 2
    assert "needs identity projections, not --projections random" in result.stderr


def test_summaries_are_in_every_record():
    record = run_json("inspect", "the river bank", "--top-k", "2", "--heads", "2")
    for head in record["heads"]:
        assert all(len(keys) == 2 for keys in head["summary"]["top"]["keys"])
        weights = np.array(head["weights"])
        assert head["summary"]["strongest"]["keys"] == weights.argmax(axis=1).tolist()
        p = weights
        assert_allclose(head["summary"]["entropy_bits"], -(p * np.log2(p)).sum(axis=1), rtol=1e-5)


# ---- compare -----------------------------------------------------------------------------------------

COMPARE_SCHEMA = json.loads((resources.files("attnviz_cli") / "schemas" / "compare-1.schema.json").read_text())


def test_compare_follows_the_word_into_both_sentences(glove):
    result = run("compare", "I sat on the river bank", "I deposited money at the bank", "--focus", "bank", "-f", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, COMPARE_SCHEMA)
    first, second = record["sentences"]
    assert (first["position"], second["position"]) == (5, 5)
    for side in (first, second):  # the same numbers as inspecting each sentence on its own
        alone = run_json("inspect", side["sentence"])
        assert side["weights"] == [alone["heads"][0]["weights"][side["position"]]]
        assert side["output"] == alone["output"][side["position"]]
    a, b = np.array(first["output"]), np.array(second["output"])
    assert record["output_cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-6)
    assert record["input_cosine"] == 1.0  # the same word goes in as the same vector: exactly 1
    assert record["output_cosine"] < 0.999  # the contexts take 'bank' apart
    assert [n["word"] for n in second["neighbors"]["after"]][:2] == ["banks", "investment"]


def test_compare_table_shows_both_sides_and_the_cosine():
    result = run("compare", "the river bank", "the money bank", "--focus", "bank", "--heads", "2")
    assert result.exit_code == 0
    assert "first sentence" in result.stdout and "second sentence" in result.stdout
    assert result.stdout.count("head 1 of 2: weights of 'bank'") == 2
    assert "cosine of the two contextualized 'bank' vectors: 0." in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_compare_with_random_projections_leaves_neighbours_out_and_says_so():
    result = run("compare", "the river bank", "the money bank", "--focus", "bank", "--projections", "random", "-f", "jsonl")
    assert result.exit_code == 0
    assert result.stderr == "attn: nearest words are left out: with projections other than identity the outputs are not in the embedding space\n"
    record = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1 and record["sentences"][0]["neighbors"] is None
    jsonschema.validate(record, COMPARE_SCHEMA)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["the river bank", "the money", "--focus", "bank"], "second sentence: --focus 'bank' is not one of the tokens '0:the 1:money'"),
        (["the bank by the bank", "a bank", "--focus", "bank"], "first sentence: 'bank' occurs 2 times; say which with --focus bank@1 to bank@2"),
        (["", "a bank", "--focus", "bank"], "first sentence: the sentence is empty"),
    ],
)
def test_compare_errors_name_the_sentence(args, message):
    result = run("compare", *args)
    assert result.exit_code == 1
    assert result.stderr == f"attn: error: {message}\n"


def test_compare_needs_a_focus():
    assert run("compare", "a", "b").exit_code == 2


# ---- demo --------------------------------------------------------------------------------------------


def test_demo_is_the_same_every_run_and_shows_the_worked_example():
    first, again = run("demo"), run("demo")
    assert first.exit_code == 0 and first.stdout == again.stdout
    text = first.stdout
    assert "1. One word, two contexts" in text and "2. A tiny example, by hand" in text and "3. Several heads" in text
    assert "0 x1        2.0   4.0   4.0" in text  # q1 . k = [2, 4, 4], as the article computes by hand
    assert "1 x2        4.0  16.0  12.0" in text  # one precision for the table, set by its largest score
    assert "= output          1.937  6.683  1.595" in text  # softmax([2, 4, 4]) mixes the values into this
    assert "cosine of the two contextualized 'bank' vectors: 0." in text
    # each sentence pulls 'bank' towards its own context: nearer 'money' after the money sentence, and so on
    assert " money      0.636              0.672              0.720" in text
    assert " river      0.414              0.495              0.456" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_compare_with_weights_causal_and_other_vectors(tmp_path, glove_txt):
    rng = np.random.default_rng(3)
    w = {k: rng.standard_normal((4, 4)) for k in ("wq", "wk", "wv")}
    np.savez(tmp_path / "w.npz", **w)
    args = ["compare", "the river bank", "river bank flows", "--focus", "bank", "--vectors", str(glove_txt),
            "--weights", str(tmp_path / "w.npz"), "--heads", "2", "--causal", "-f", "json"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, COMPARE_SCHEMA)
    first, second = record["sentences"]
    assert (first["position"], second["position"]) == (2, 1)
    assert second["weights"][0][2:] == [0.0]  # causal: 'bank' cannot see 'flows'
    x = FILE_VECTORS[[0, 1, 2]].astype(np.float64)  # the river bank
    expected = self_attention(x, heads=2, causal=True, **w).output[2]
    assert_allclose(first["output"], expected, rtol=1e-5)
    assert record["config"]["projections"] == "weights" and first["neighbors"] is None


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl"])
def test_heavy_libraries_stay_off_the_start_up_path(fmt):
    # gensim (other vector files), matplotlib (--save), threadpoolctl (long inputs), the model code and its
    # readers (--model), Rich (tables only)
    code = (
        "import sys; from attnviz_cli.cli import app\n"
        "try: app(['inspect', 'the river bank', '-f', sys.argv[1]])\n"
        "except SystemExit: pass\n"
        "heavy = ['gensim', 'matplotlib', 'threadpoolctl', 'scipy', 'playwright', 'concurrent.futures', 'safetensors', 'tokenizers', 'huggingface_hub', 'attnviz_cli.models']\n"
        "print(','.join(m for m in heavy + ['rich'] if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, fmt], capture_output=True, text=True, check=True)
    loaded = done.stderr.strip().split(",") if done.stderr.strip() else []
    assert loaded == (["rich"] if fmt == "table" else [])


def test_attn_version_and_help_load_no_library():
    # they build the whole app, every command's options: none of those may cost an import (--vectors's
    # help names the shipped set, from a module with no imports)
    code = (
        "import sys; from attnviz_cli.cli import run\n"
        "sys.argv = ['attn', sys.argv[1]]\n"
        "try: run()\n"
        "except SystemExit: pass\n"
        "print(','.join(m for m in ('numpy', 'orjson', 'rich', 'attnviz_cli.vectors') if m in sys.modules), file=sys.stderr)"
    )
    for flag in ("--version", "--help"):
        done = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True)
        assert done.stderr == "\n", (flag, done.stderr)


ATTN_THEN_BLAS = (
    "import os, sys\n"
    "from attnviz_cli.main import main\n"
    "sys.argv = ['attn', 'inspect', 'the river bank', '-f', 'jsonl']\n"
    "try: main()\n"
    "except SystemExit: pass\n"
    "from threadpoolctl import threadpool_info\n"
    "blas = [pool['num_threads'] for pool in threadpool_info() if pool['internal_api'] == 'openblas']\n"
    "print(os.environ['OPENBLAS_NUM_THREADS'], blas, file=sys.stderr)"
)


def test_attn_gives_blas_one_thread_unless_told_otherwise():
    # OpenBLAS's idle threads spin on the cores attnviz's own threads and workers need: `attn` starts
    # it with one, before NumPy loads (so `import attnviz_cli` must not load NumPy), unless the user set
    # OPENBLAS_NUM_THREADS, which is left as it is.
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", ATTN_THEN_BLAS], capture_output=True, text=True, check=True, env=env)
    assert done.stderr.split("\n")[-2] in ("1 [1]", "1 []")  # [] only where NumPy carries another BLAS
    mine = subprocess.run([sys.executable, "-c", ATTN_THEN_BLAS], capture_output=True, text=True, check=True, env={**env, "OPENBLAS_NUM_THREADS": "3"})
    assert mine.stderr.split("\n")[-2].startswith("3 ")
    lazy = subprocess.run([sys.executable, "-c", "import sys, attnviz_cli; print('numpy' in sys.modules)"], capture_output=True, text=True, check=True)
    assert lazy.stdout == "False\n"


# ---- every option reaches every format, usage errors before data, tables as a person sees them -----


def test_markdown_shows_focus_and_neighbors():
    # Issue 12.1: -f markdown dropped --focus and --neighbors without a word.
    result = run("inspect", "the river bank", "--focus", "bank", "--neighbors", "3", "-f", "markdown")
    assert result.exit_code == 0, result.output
    assert "#### Focus bank (position 2), head 0 of 1" in result.stdout
    assert "| 1 river | 16.62 | 2.35 | 0.054 |" in result.stdout  # q·k, ÷√50, softmax: as the table shows them
    assert "#### Where the meaning moved (3 nearest words by cosine)" in result.stdout
    assert "| 2 bank | banks, securities, banking |" in result.stdout


@pytest.mark.parametrize("option", [["--focus", "bank"], ["--neighbors", "3"]])
def test_csv_refuses_focus_and_neighbors_before_loading(option):
    result = run("inspect", "the river bank", *option, "-f", "csv", "--vectors", "/no/such/vectors.txt")
    assert result.exit_code == 2 and "has no place in CSV" in result.stderr and "does not exist" not in result.stderr


def test_compare_refuses_csv_as_usage_before_loading():
    # Issue 12.2: exit 1 after loading the vectors; a usage error is exit 2, found first.
    result = run("compare", "the river bank", "the money bank", "--focus", "bank", "-f", "csv", "--vectors", "/no/such.txt")
    # compare's --format lists just what it writes (issue 27.9), so Click refuses csv as a choice
    assert result.exit_code == 2 and "'csv' is not one of 'table', 'json', 'jsonl', 'markdown'" in result.stderr


def test_a_truncated_gzip_vectors_file_is_one_line(tmp_path):
    # Issue 12.3: "internal error: AttributeError" (an EOFError has no strerror).
    import gzip

    data = gzip.compress(b"".join(f"w{i} 0.5 0.25\n".encode() for i in range(2000)))
    (tmp_path / "v.txt.gz").write_bytes(data[: len(data) // 2])
    result = run("inspect", "w1 w2", "--vectors", str(tmp_path / "v.txt.gz"))
    assert result.exit_code == 1
    assert result.stderr.startswith("attn: error: vectors file ") and "is truncated" in result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr


def test_piped_tables_have_no_trailing_spaces():
    # Issue 12.10: Rich pads every cell; a CI log or diff saw spaces at every line end.
    result = run("inspect", "I deposited money at the bank", "--focus", "bank", "--neighbors", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) > 40 and all(line == line.rstrip() for line in lines)


def test_wide_terminals_show_whole_tokens():
    # Issue 12.10: "dep…" at COLUMNS=200, where there was room for "deposited".
    result = run("inspect", "I deposited money at the bank", env={"COLUMNS": "200"})
    header = next(line for line in result.stdout.splitlines() if line.startswith("query") and "strongest" in line)
    assert header.split() == ["query", "i", "deposited", "money", "at", "the", "bank", "strongest"]
    assert "1 deposited" in result.stdout and "…" not in result.stdout
    narrow = run("inspect", " ".join(["I deposited money at the bank"] * 2), env={"COLUMNS": "80"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80  # at 80 columns, runs of keys as before


def test_vectors_neighbors_title_stays_on_one_line_on_a_wide_terminal():
    result = run("vectors", "neighbors", "bank", "-k", "2", env={"COLUMNS": "200"})
    assert result.stdout.splitlines()[0] == "nearest to 'bank' in 'glove-6b-50d-50k' (cosine)"


def test_renderers_name_missing_matrices_instead_of_crashing(glove):
    # Issue 12.4: inspection_markdown raised TypeError on an inspection made without matrices.
    from attnviz_cli.attention_types import Attention
    from attnviz_cli.pipeline import inspect_sentence
    from attnviz_cli.projections import identity
    from attnviz_cli.render_csv import inspection_csv
    from attnviz_cli.render_markdown import inspection_markdown
    from attnviz_cli.results import InspectOptions, MissingMatrices

    light = inspect_sentence("the river bank", glove, identity(), InspectOptions(fields=("tokens", "output")))
    assert not isinstance(light.attention, Attention)  # no matrix asked for, none kept
    for render in (inspection_markdown, inspection_csv):
        with pytest.raises(MissingMatrices, match="shows the scores and weights, but this inspection was made without them"):
            render(light)
    full = inspect_sentence("the river bank", glove, identity(), InspectOptions(fields=("tokens", "weights")))
    assert isinstance(full.attention, Attention)
    assert_array_equal(full.attention.output, light.attention.output)  # one computation: kept or not, the same bits


def test_word_order_matters_only_with_positions():
    # Static embeddings carry no order: "dog bites man" and "man bites dog" give the same vectors,
    # reordered. With --positions sinusoidal the same word comes out different in each.
    plain = [run_json("inspect", s) for s in ("dog bites man", "man bites dog")]
    assert plain[0]["config"]["positions"] == "none"
    assert_allclose(plain[0]["output"][0], plain[1]["output"][2], rtol=1e-6)  # dog, first or last
    ordered = [run_json("inspect", s, "--positions", "sinusoidal") for s in ("dog bites man", "man bites dog")]
    assert ordered[0]["config"]["positions"] == "sinusoidal"
    assert not np.allclose(ordered[0]["output"][0], ordered[1]["output"][2], atol=1e-3)
    from attnviz_cli.core import sinusoidal_positions

    assert_allclose(np.float32(ordered[0]["inputs"]), np.float32(plain[0]["inputs"]) + sinusoidal_positions(3, 50, np.float32), rtol=1e-6)
    table = run("inspect", "dog bites man", "--positions", "sinusoidal")
    assert "attention    1 head · d_k 50 · scaled by 1/√d_k · sinusoidal positions" in table.stdout


def test_inspect_help_lists_its_options_in_groups():
    result = run("inspect", "--help", env={"COLUMNS": "100"})
    sections = [line for line in result.stdout.splitlines() if line.endswith("options:")]
    assert sections == ["Static vectors and attention options:", "A real model (--model) options:", "What to look at options:", "Output options:"]
    model_part = result.stdout.split("A real model (--model) options:")[1].split("What to look at options:")[0]
    assert all(f"--{name}" in model_part for name in ("model", "layer", "head", "dtype", "rollout"))
