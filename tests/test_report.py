"""The report stage: a self-contained page, checked in headless Chromium (Playwright, system browser)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from support.params import toy_params

from lwise_build.config.params import Params
from lwise_build.errors import UserError
from lwise_build.io.images import decode_png, encode_png
from lwise_build.io.tables import read_table, write_table
from lwise_build.stages.report.stage import Report, stratified_sample


def uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def make_params(**report) -> Params:
    return toy_params({"report": report})


# ------------------------------------------------------------------ tiny stage tables ---------
def originals(root: Path) -> dict[str, bytes]:
    t = read_table(root / "toy" / "images", ["id", "image"])
    return dict(zip(t["id"].to_pylist(), [d["bytes"] for d in t["image"].to_pylist()], strict=True))


def write_scores(root: Path, tiny: dict) -> dict[str, float]:
    """Two aliases; robust difficulty rises with the image index."""
    from datasets import Features, Value

    n = len(tiny["ids"])
    rob = [round(i / (n - 1), 4) for i in range(n)]
    cols = {"id": tiny["ids"], "label": tiny["labels"], "split": tiny["splits"]}
    feats = {"id": Value("string"), "label": Value("int64"), "split": Value("string")}
    for alias, diff in (("robust", rob), ("standard", rob[::-1])):
        for suffix, vals in (("gt_logit", [5 - 5 * d for d in diff]), ("difficulty", diff),
                             ("difficulty_global", diff), ("prob", diff), ("margin", diff)):
            cols[f"{alias}_{suffix}"], feats[f"{alias}_{suffix}"] = vals, Value("float64")
        cols[f"{alias}_pred"], feats[f"{alias}_pred"] = tiny["labels"], Value("int64")
    write_table([cols], Features(feats), root / "toy" / "scores")
    return dict(zip(tiny["ids"], rob, strict=True))


def write_enhanced(root: Path, tiny: dict) -> dict[str, dict[str, bytes]]:
    """eps=1 (brightened; validation split not enhanced) and eps=2 (inverted, every split)."""
    from datasets import ClassLabel, Features, Image, Value

    orig = originals(root)
    feats = Features({"id": Value("string"), "label": ClassLabel(names=tiny["classes"]),
                      "split": Value("string"), "budget": Value("float64"), "image": Image(),
                      "gt_logit_before": Value("float64"), "gt_logit_after": Value("float64"),
                      "l2": Value("float64"), "linf": Value("float64")})
    out = {}
    for budget, change in ((1.0, lambda a: np.clip(a.astype(int) + 90, 0, 255)), (2.0, lambda a: 255 - a)):
        keep = [k for k, s in enumerate(tiny["splits"]) if budget == 2.0 or s != "validation"]
        ids = [tiny["ids"][k] for k in keep]
        pngs = [encode_png(change(decode_png(orig[i])[..., 0]).astype(np.uint8)) for i in ids]
        rows = {"id": ids, "label": [tiny["labels"][k] for k in keep],
                "split": [tiny["splits"][k] for k in keep], "budget": [budget] * len(ids),
                "image": [{"bytes": p, "path": None} for p in pngs], "gt_logit_before": [1.0] * len(ids),
                "gt_logit_after": [1.0 + budget] * len(ids), "l2": [budget] * len(ids),
                "linf": [0.3] * len(ids)}
        write_table([rows], feats, root / "toy" / "enhanced" / f"eps={budget:g}")
        out[f"{budget:g}"] = dict(zip(ids, pngs, strict=True))
    return out


def write_curricula(root: Path, tiny: dict) -> list[dict]:
    """One curriculum, two sequences of 6 trials: budgets 2, 2, 1, 1, 0, 0 over 3 blocks."""
    from datasets import Features, Value

    train = [k for k, s in enumerate(tiny["splits"]) if s == "train"]
    rows = []
    for seq in (0, 1):
        for t in range(6):
            k = train[(7 * t + 3 * seq) % len(train)]
            rows.append({"curriculum": "lwise", "sequence": seq, "trial": t, "block": t // 2 + 1,
                         "phase": "train" if t < 4 else "test", "feedback": t < 4, "id": tiny["ids"][k],
                         "label": tiny["labels"][k], "budget": [2.0, 1.0, 0.0][t // 2],
                         "difficulty": 0.5, "selection": "easiest" if t < 4 else "set_aside"})
    kinds = {"curriculum": "string", "sequence": "int64", "trial": "int64", "block": "int64",
             "phase": "string", "feedback": "bool", "id": "string", "label": "int64",
             "budget": "float64", "difficulty": "float64", "selection": "string"}
    cols = {c: [r[c] for r in rows[::-1]] for c in kinds}  # stored out of order on purpose
    write_table([cols], Features({c: Value(v) for c, v in kinds.items()}), root / "toy" / "curricula")
    return rows


def write_metamers(root: Path, tiny: dict) -> None:
    """Two references x one generator x two layers, judged by one other model."""
    from datasets import ClassLabel, Features, Image, Value

    rng = np.random.default_rng(1)
    rows: dict[str, list] = {c: [] for c in ("reference_id", "label", "generator", "layer", "layer_depth",
                                             "metamer", "passes", "generator_pred", "judge_m_std_pred")}
    for k in (0, 25):
        for depth, layer in enumerate(("stage1", "stage2")):
            png = encode_png(rng.integers(0, 255, (16, 16), dtype=np.uint8))
            for key, v in (("reference_id", tiny["ids"][k]), ("label", tiny["labels"][k]),
                           ("generator", "m-robust"), ("layer", layer), ("layer_depth", depth),
                           ("metamer", {"bytes": png, "path": None}), ("passes", depth == 0),
                           ("generator_pred", tiny["labels"][k]), ("judge_m_std_pred", depth)):
                rows[key].append(v)
    feats = Features({"reference_id": Value("string"), "label": ClassLabel(names=tiny["classes"]),
                      "generator": Value("string"), "layer": Value("string"), "layer_depth": Value("int64"),
                      "metamer": Image(), "passes": Value("bool"), "generator_pred": Value("int64"),
                      "judge_m_std_pred": Value("int64")})
    write_table([rows], feats, root / "toy" / "metamers")


@pytest.fixture
def full_corpus(tiny_images):
    root = tiny_images["root"]
    fig = encode_png(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (30, 1)))
    (root / "toy" / "plots" / "score").mkdir(parents=True)
    (root / "toy" / "plots" / "score" / "difficulty.png").write_bytes(fig)
    write_metamers(root, tiny_images)
    return {**tiny_images, "difficulty": write_scores(root, tiny_images),
            "enhanced": write_enhanced(root, tiny_images), "trials": write_curricula(root, tiny_images),
            "figure": fig, "orig": originals(root)}


# ------------------------------------------------------------------ no browser needed ---------
def test_sample_is_stratified_seeded_and_order_free():
    ids = [f"{i:04x}" for i in range(90)]
    labels = [i % 3 if i < 60 else 2 for i in range(90)]  # class 2 is the largest
    picked = stratified_sample(ids, labels, 12, seed=0)
    assert sorted(labels[i] for i in picked) == [0] * 4 + [1] * 4 + [2] * 4
    rev = stratified_sample(ids[::-1], labels[::-1], 12, seed=0)
    assert {ids[i] for i in picked} == {ids[::-1][i] for i in rev}
    assert {ids[i] for i in picked} != {ids[i] for i in stratified_sample(ids, labels, 12, seed=1)}
    assert len(stratified_sample(ids, labels, 500, seed=0)) == 90


def test_page_is_self_contained_and_deterministic(full_corpus):
    params = make_params(sample=24, metamer_sample=2, curriculum_sequences=1)
    first = (Report(params, "toy").run() / "index.html").read_bytes()
    assert (Report(params, "toy").run() / "index.html").read_bytes() == first
    text = first.decode()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "http://" not in text and "https://" not in text
    assert uri(full_corpus["figure"]) in text
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    data = json.loads(blob.group(1))
    sample = {item[0] for item in data["items"]}
    assert len(sample) == 24 and data["total"] == 60
    two = {t["id"] for t in full_corpus["trials"] if t["sequence"] == 0 and t["budget"] == 2}
    assert set(data["enh"]["2"]) == sample | two  # variants only for what the page can show
    one = {t["id"] for t in full_corpus["trials"] if t["sequence"] == 0 and t["budget"] == 1}
    assert set(data["enh"]["1"]) == {i for i in sample | one if i in full_corpus["enhanced"]["1"]}


def test_missing_images_is_one_line_error(data_root):
    with pytest.raises(UserError, match="images"):
        (Report(make_params(), "toy").run() / "index.html")


# ------------------------------------------------------------------ in the browser ------------
def open_page(browser, path: Path):
    """Open ``path``; collect console errors, page errors and every requested URL."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = {"errors": [], "requests": []}
    page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, log


def shown_cards(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#grid .card",  # what is visible on screen, not just an attribute
        "cs => cs.filter(c => c.getClientRects().length).map(c => ({id: c.dataset.id, cls: c.dataset.class, split: c.dataset.split,"
        " src: c.querySelector('img').getAttribute('src'), note: c.querySelector('.variant').textContent}))")


def check_budget_slider(page, corpus: dict) -> None:
    cards = shown_cards(page)
    assert len(cards) == 24 and all(c["src"] == uri(corpus["orig"][c["id"]]) for c in cards)
    page.focus("#budget")
    page.keyboard.press("ArrowRight")  # eps = 1: validation images have no variant
    assert page.inner_text("#budget-out") == "ε = 1"
    enh, kept = 0, 0
    for c in shown_cards(page):
        if c["id"] in corpus["enhanced"]["1"]:
            assert c["src"] == uri(corpus["enhanced"]["1"][c["id"]]) != uri(corpus["orig"][c["id"]])
            enh += 1
        else:
            assert c["src"] == uri(corpus["orig"][c["id"]]) and "no variant" in c["note"]
            kept += 1
    assert enh and kept
    page.keyboard.press("ArrowRight")
    assert all(c["src"] == uri(corpus["enhanced"]["2"][c["id"]]) for c in shown_cards(page))
    page.keyboard.press("Home")
    assert all(c["src"] == uri(corpus["orig"][c["id"]]) for c in shown_cards(page))


def check_filters(page, corpus: dict) -> None:
    page.select_option("#f-class", label="dot")
    assert {c["cls"] for c in shown_cards(page)} == {"dot"} and len(shown_cards(page)) == 8
    page.select_option("#f-split", "train")
    assert {(c["cls"], c["split"]) for c in shown_cards(page)} == {("dot", "train")}
    page.select_option("#f-class", "")
    page.select_option("#f-split", "")
    page.eval_on_selector("#f-dmin", "e => { e.value = '0.5'; e.dispatchEvent(new Event('input')); }")
    cards = shown_cards(page)
    assert cards and all(corpus["difficulty"][c["id"]] >= 0.5 for c in cards) and len(cards) < 24
    assert "match the filters" in page.inner_text("#images-count")
    page.eval_on_selector("#f-dmin", "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }")
    assert len(shown_cards(page)) == 24


def check_curriculum(page, corpus: dict) -> None:
    page.select_option("#c-curriculum", label="lwise")
    page.select_option("#c-sequence", "0")
    rows = page.eval_on_selector_all(
        "#trials tbody tr", "rs => rs.map(r => ({id: r.dataset.id, budget: r.dataset.budget,"
        " cells: [...r.cells].map(c => c.textContent), src: r.querySelector('img')?.getAttribute('src')}))")
    want = [t for t in corpus["trials"] if t["sequence"] == 0]
    assert [r["cells"][0] for r in rows] == [str(t["trial"]) for t in want]
    assert [r["id"] for r in rows] == [t["id"] for t in want]
    for r, t in zip(rows, want, strict=True):
        b = f"{t['budget']:g}"
        assert r["src"] == uri(corpus["enhanced"][b][t["id"]] if b != "0" else corpus["orig"][t["id"]])
        assert r["cells"][1] == str(t["block"]) and r["cells"][4] == ("yes" if t["feedback"] else "no")
    page.select_option("#c-sequence", "1")
    assert "not embedded" in page.inner_text("#trials")


def test_report_in_browser(browser, full_corpus, tmp_path):
    page_path = (Report(make_params(sample=24, metamer_sample=2, curriculum_sequences=1), "toy").run() / "index.html")
    page, log = open_page(browser, page_path)
    assert "Showing 24 of 60 images" in page.inner_text("#images")
    check_budget_slider(page, full_corpus)
    check_filters(page, full_corpus)
    check_curriculum(page, full_corpus)
    assert page.locator("#recognisability tbody tr").count() == 2
    assert page.locator("#metamers .mm:not(.reference) img").count() == 4
    assert "✓ pass" in page.inner_text("#metamers") and "✗ fail" in page.inner_text("#metamers")
    figs = page.eval_on_selector_all("#figures img", "is => is.map(i => i.getAttribute('src'))")
    assert figs == [uri(full_corpus["figure"])]
    page.keyboard.press("ArrowRight")  # the screenshot shows eps = 1 and sequence 0
    page.select_option("#c-sequence", "0")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.screenshot(path="/tmp/report.png", full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert log["errors"] == []
    assert all(u.startswith(("file://", "data:")) for u in log["requests"]), log["requests"]
    page.close()


def test_report_with_only_images_says_not_built(browser, tiny_images, tmp_path):
    page, log = open_page(browser, (Report(make_params(sample=10), "toy").run() / "index.html"))
    assert "Curricula: none configured (corpora.toy.curricula is empty)." in page.inner_text("#curricula")
    assert "Metamers: none configured (corpora.toy.metamers.generators is empty)." in page.inner_text("#metamers")
    assert "not built" in page.inner_text("#figures") and "no trials" not in page.inner_text("#curricula")
    assert "Enhancement not configured (corpora.toy.enhance.model is not set)" in page.inner_text("#images")
    assert page.is_disabled("#budget") and len(shown_cards(page)) == 10
    assert page.is_disabled("#f-dmin") and "not built" in page.inner_text("#grid .card")
    assert "Showing 10 of 60 images" in page.inner_text("#images")
    page.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
    assert log["errors"] == [] and all(u.startswith(("file://", "data:")) for u in log["requests"])
    page.close()


LONG_NAMES = ["golden_retriever", "great_white_shark", "red-breasted_merganser", "cat"]


def photo_corpus(root: Path, n: int = 12, size: int = 224) -> int:
    """224-px RGB noise images (incompressible, as photos at PNG are) with long class names;
    returns the bytes of their PNGs."""
    from support.tables import write_images_table

    rng = np.random.default_rng(3)
    arrays = (rng.random((n, size, size, 3)) * 255).astype(np.uint8)
    write_images_table(root / "toy" / "images", arrays, [i % 4 for i in range(n)], ["train"] * n, LONG_NAMES)
    return sum(len(encode_png(a)) for a in arrays)


def test_photos_go_in_as_thumbnails_and_the_tables_keep_the_full_images(data_root):
    full = photo_corpus(data_root)
    page = (Report(make_params(sample=12, thumbnail_px=96), "toy").run() / "index.html").read_text()
    blob = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
                      .group(1).replace("\\u003c", "<"))
    assert len(blob["src"]) == 12 and all(u.startswith("data:image/jpeg;base64,") for u in blob["src"].values())
    sizes = {decode_png_or_jpeg(u).shape[:2] for u in blob["src"].values()}
    assert sizes == {(96, 96)}
    assert len(page) < full / 10  # the 224-px PNGs would make the page larger than all of them
    assert {len(d["bytes"]) for d in read_table(data_root / "toy" / "images", ["image"])["image"].to_pylist()} \
        == {len(encode_png(a)) for a in (np.random.default_rng(3).random((12, 224, 224, 3)) * 255).astype(np.uint8)}


def decode_png_or_jpeg(data_uri: str) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


@pytest.mark.browser
def test_long_class_names_wrap_between_words_not_inside_them(browser, data_root):
    photo_corpus(data_root)
    page, log = open_page(browser, Report(make_params(sample=12), "toy").run() / "index.html")
    page.set_viewport_size({"width": 700, "height": 900})  # narrow cards
    # every word (between "_", "-" and spaces) of every class name lies on one line
    split = page.eval_on_selector_all("#grid .card .cls", """els => els.filter(e => e.getClientRects().length).map(e => {
        const text = e.textContent, words = [], r = document.createRange();
        let pos = 0;
        for (const w of text.split(/[_\\- ]/)) {
          const node = [...e.childNodes].find(n => n.nodeType === 3 && n.textContent.includes(w));
          const at = node.textContent.indexOf(w);
          r.setStart(node, at); r.setEnd(node, at + w.length);
          words.push([w, new Set([...r.getClientRects()].map(b => Math.round(b.top))).size]);
        }
        return [text, words.filter(([, lines]) => lines > 1)];
      })""")
    assert {t for t, _ in split} == set(LONG_NAMES)
    assert all(not broken for _, broken in split), [s for s in split if s[1]]
    assert log["errors"] == []
    page.close()
