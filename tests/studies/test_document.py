"""The one document model every report is rendered from (studies/document.py)."""

import pandas as pd

from rewardherd.studies.document import Document, inline_html, md_table

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def test_md_table_escapes_pipes_joins_tuple_columns_and_keeps_the_index():
    df = pd.DataFrame({"a": [1, 2], "b|c": ["x|y", "z"]})
    assert md_table(df) == "\n".join(["| a | b|c |", "|---|---|", "| 1 | x\\|y |", "| 2 | z |"])
    wide = pd.DataFrame([[0.5, 1]], columns=pd.MultiIndex.from_tuples([("acc", "mean"), ("acc", "n")]))
    assert md_table(wide).splitlines() == ["| acc / mean | acc / n |", "|---|---|", "| 0.5 | 1 |"]
    indexed = pd.DataFrame({"acc": [0.5]}, index=pd.Index([0.25], name="noise"))
    assert md_table(indexed, index=True).splitlines() == ["| noise | acc |", "|---|---|", "| 0.25 | 0.5 |"]


def test_inline_marks_render_and_everything_else_is_escaped():
    assert inline_html("**C3** uses `min` & <b>") == "<b>C3</b> uses <code>min</code> &amp; &lt;b&gt;"
    assert inline_html("**C1** uses `x<y` & more") == "<b>C1</b> uses <code>x&lt;y</code> &amp; more"


def _doc(tmp_path):
    fig = tmp_path / "figures" / "f.png"
    fig.parent.mkdir()
    fig.write_bytes(PNG)
    verdicts = pd.DataFrame({"claim": ["C1", "C2"], "verdict": ["reproduced", "not reproduced"]})
    doc = Document("A <report>")
    doc.heading("Summary").bullets(["one **bold**", "two"]).paragraph("").paragraph("text `x`")
    doc.table(verdicts, shade_verdicts=True).table(pd.DataFrame(), empty="(not computed)").table(pd.DataFrame())
    doc.figure(fig, "fig", "its caption", relative_to=tmp_path).heading("Config", 3).preformatted('{"a": 1}', "json")
    return doc


def test_markdown_and_html_render_the_same_blocks(tmp_path):
    doc = _doc(tmp_path)
    assert doc.markdown().splitlines() == [
        "# A <report>", "", "## Summary", "", "- one **bold**", "- two", "", "text `x`", "",
        "| claim | verdict |", "|---|---|", "| C1 | reproduced |", "| C2 | not reproduced |", "",
        "(not computed)", "", "![fig](figures/f.png)", "", "*its caption*", "", "### Config", "",
        "```json", '{"a": 1}', "```"]
    page = doc.html()
    assert page.startswith("<!doctype html>") and page.endswith("</body></html>")
    assert "<title>A &lt;report&gt;</title>" in page and "<h1>A &lt;report&gt;</h1>" in page
    assert "<ul><li>one <b>bold</b></li><li>two</li></ul><p>text <code>x</code></p>" in page
    assert '<td class="reproduced">reproduced</td>' in page and '<td class="not">not reproduced</td>' in page
    assert "<p>(not computed)</p>" in page and page.count("<table") == 1  # the empty table without text: nothing
    assert '<img alt="fig" src="data:image/png;base64,iVBORw0KGgo' in page and "<figcaption>its caption" in page
    assert "<h3>Config</h3><pre>{&quot;a&quot;: 1}</pre>" in page


def test_write_puts_both_files_in_place_and_leaves_no_temporary(tmp_path):
    doc = _doc(tmp_path)
    (tmp_path / "report.md").write_text("old")
    path = doc.write(tmp_path)
    assert path == tmp_path / "report.html" and path.read_text() == doc.html()
    assert (tmp_path / "report.md").read_text() == doc.markdown()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
