"""Names people copy (model ids, folders, paths) are shown whole: folded onto more lines in tables,
printed whole (escaped) in one-line messages, never elided with "…". Tables at fixed widths, as
tests/test_render_table.py renders them."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from attnviz_cli.models.catalog import ModelEntry, ModelInfo
from attnviz_cli.render_model_table import model_info_table, model_list_table

from .conftest import run
from .test_render_table import without_trailing_spaces

CACHE = "/home/me/.cache/huggingface/hub"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
SST_ID = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
ENTRIES = [
    ModelEntry(MINILM_ID, Path(CACHE), "ready", "bert", 6, 12, 384, 90_868_376),
    ModelEntry(SST_ID, Path(CACHE), "pickle only (pytorch_model.bin)"),
]
SNAPSHOT = f"{CACHE}/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
INFO = ModelInfo(MINILM_ID, Path(SNAPSHOT), "bert", 6, 12, 384, 512, 22_713_216, ("F32",), 90_868_376, "WordPiece", 30_522)


def rendered(renderable, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, highlight=False)
    console.print(renderable)
    return without_trailing_spaces(console.file.getvalue())


def test_model_list_keeps_its_table_where_every_id_fits_whole():
    assert rendered(model_list_table(ENTRIES, CACHE), 150) == """\
models in the Hugging Face cache (/home/me/.cache/huggingface/hub)
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ model                                                      ┃ architecture ┃ layers × heads ┃ d_model ┃     size ┃ status                          ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ sentence-transformers/all-MiniLM-L6-v2                     │ bert         │         6 × 12 │     384 │ 86.7 MiB │ ready                           │
│ distilbert/distilbert-base-uncased-finetuned-sst-2-english │              │                │         │          │ pickle only (pytorch_model.bin) │
└────────────────────────────────────────────────────────────┴──────────────┴────────────────┴─────────┴──────────┴─────────────────────────────────┘
"""


def test_model_list_at_80_60_and_40_columns_puts_each_id_whole_on_a_line_of_its_own():
    assert rendered(model_list_table(ENTRIES, CACHE), 80) == f"""\
models in the Hugging Face cache (/home/me/.cache/huggingface/hub)
{MINILM_ID}
  bert · 6 layers × 12 heads · d_model 384 · 86.7 MiB · ready
{SST_ID}
  pickle only (pytorch_model.bin)
"""
    assert rendered(model_list_table(ENTRIES, CACHE), 60) == f"""\
models in the Hugging Face cache
(/home/me/.cache/huggingface/hub)
{MINILM_ID}
  bert · 6 layers × 12 heads · d_model 384 · 86.7 MiB ·
  ready
{SST_ID}
  pickle only (pytorch_model.bin)
"""
    assert rendered(model_list_table(ENTRIES, CACHE), 40) == """\
models in the Hugging Face cache
(/home/me/.cache/huggingface/hub)
sentence-transformers/all-MiniLM-L6-v2
  bert · 6 layers × 12 heads · d_model
  384 · 86.7 MiB · ready
distilbert/distilbert-base-uncased-finet
uned-sst-2-english
  pickle only (pytorch_model.bin)
"""


def test_model_info_folds_its_folder_onto_more_lines():
    assert rendered(model_info_table(INFO), 60) == """\
model sentence-transformers/all-MiniLM-L6-v2
┌────────────────┬─────────────────────────────────────────┐
│ folder         │ /home/me/.cache/huggingface/hub/models- │
│                │ -sentence-transformers--all-MiniLM-L6-v │
│                │ 2/snapshots/c9745ed1d9f207416be6d2e6f8d │
│                │ e32d1f16199bf                           │
│ architecture   │ bert                                    │
│ layers × heads │ 6 × 12 (d_k 32)                         │
│ d_model        │ 384                                     │
│ positions      │ 512 tokens at most                      │
│ parameters     │ 22,713,216                              │
│ stored as      │ F32                                     │
│ size on disk   │ 86.7 MiB                                │
│ tokenizer      │ WordPiece, 30,522 tokens                │
└────────────────┴─────────────────────────────────────────┘
"""
    at_80 = rendered(model_info_table(INFO), 80)
    assert "…" not in at_80 and "".join(line[19:78].strip() for line in at_80.splitlines()[2:5]) == SNAPSHOT


def test_an_error_names_a_long_model_folder_whole_on_one_line(tmp_path):
    folder = tmp_path / "a-rather-long-folder-of-models-kept-for-a-course-on-attention" / "sentence-transformers--all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "t5"}')
    result = run("inspect", "x", "--model", str(folder), env={"COLUMNS": "60"})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"attn: error: model '{folder}' is a 't5'; attnviz runs ")  # the list of runs is catalog's
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n") and "…" not in result.stderr
