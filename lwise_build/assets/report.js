/* lwise-build report: renders the inline JSON; no network, no libraries. */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  const fmt = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d === undefined ? 2 : d));
  const cls = (i) => (i === null || i === undefined ? "?" : (D.classes[i] !== undefined ? D.classes[i] : String(i)));
  /* A class name as text with break opportunities after "_" and "-" only: a long name wraps
     between its words, never inside one (golden_retriever, not golden_retri-ever). */
  const words = (name) => name.split(/(?<=[_-])/).flatMap((part, k) => (k ? [el("wbr"), part] : [part]));
  const eps = (b) => "ε = " + b;
  const empty = (text) => el("p", { class: "empty", text });
  /* Why a section is empty: not configured in params (say which key), or configured but not built yet. */
  const missing = (what, key, built) => (D.configured && !D.configured[key])
    ? what + ": none configured (corpora." + D.corpus + "." + D.configKeys[key] + " is empty)."
    : what + (built ? " built, but empty." : " not built yet (run dvc repro).");
  function option(value, text, selected) {
    return el("option", { value, selected: selected ? true : null, text });
  }
  function select(id, label, options) {
    const s = el("select", { id });
    options.forEach(([v, t]) => s.append(option(v, t)));
    return [el("div", { class: "field" }, el("label", { for: id, text: label }), s), s];
  }
  /* The image as shown at a budget: [src, state] with state original | enhanced | missing. */
  function shown(id, budget) {
    if (budget !== "0") {
      const e = (D.enh[budget] || {})[id];
      if (e) return [e[0], "enhanced", e[1]];
      return [D.src[id], "missing"];
    }
    return [D.src[id], "original"];
  }

  /* ---------------------------------------------------------------- header */
  function header() {
    if (D.pixelated) document.body.classList.add("pixelated");
    const splits = D.splitCounts.map(([s, n]) => s + " " + n).join(", ");
    const parts = [D.total + " images", D.classes.length + " classes", "splits: " + splits,
      "scores: " + (D.aliases.length ? D.aliases.join(", ") : (D.configured && !D.configured.score ? "none configured" : "not built")),
      "budgets: " + (D.budgets.length ? D.budgets.join(", ") : (D.configured && !D.configured.enhance ? "none configured" : "not built"))];
    $("summary").textContent = parts.join(" · ");
  }

  /* ---------------------------------------------------------------- image browser */
  const state = { cls: "", split: "", alias: 0, dmin: 0, dmax: 1, sort: "class", budget: "0" };
  const cards = [];

  function makeCard(item, order) {
    const [id, label, split, diffs] = item;
    const img = el("img", { class: "thumb", alt: cls(label) + " image " + id, src: D.src[id] });
    const dl = el("dl", { class: "diffs" });
    if (D.aliases.length) {
      D.aliases.forEach((a, k) => {
        const v = diffs ? diffs[k] : null;
        const bar = el("div", { class: "bar", "aria-hidden": "true" }, el("span"));
        bar.firstChild.style.width = (v === null ? 0 : Math.round(v * 100)) + "%";
        dl.append(el("dt", { text: a }), bar, el("dd", { text: fmt(v) }));
      });
    } else {
      dl.append(el("dt", { text: "difficulty" }), el("span"), el("dd", { text: "not built" }));
    }
    const note = el("div", { class: "variant", text: "original" });
    const card = el("figure", { class: "card", "data-id": id, "data-class": cls(label), "data-split": split },
      img, el("figcaption", {},
        el("div", { class: "head" }, el("span", { class: "cls", title: cls(label) }, ...words(cls(label))), el("span", { class: "tag", text: split })),
        dl, note));
    return { id, label, split, diffs, order, card, img, note };
  }

  function difficulty(c) {
    return c.diffs ? c.diffs[state.alias] : null;
  }

  function applyFilters() {
    let n = 0;
    for (const c of cards) {
      const d = difficulty(c);
      const all = !D.aliases.length || (state.dmin <= 0 && state.dmax >= 1);
      const inRange = all || (d !== null && d >= state.dmin - 1e-9 && d <= state.dmax + 1e-9);
      const ok = (!state.cls || String(c.label) === state.cls) && (!state.split || c.split === state.split) && inRange;
      c.card.hidden = !ok;
      if (ok) n += 1;
    }
    $("images-count").textContent = n + " of the " + cards.length + " shown images match the filters.";
  }

  function applySort() {
    const key = (c) => difficulty(c) === null ? 2 : difficulty(c);
    const sorted = cards.slice().sort((a, b) => {
      if (state.sort === "easy") return key(a) - key(b) || a.order - b.order;
      if (state.sort === "hard") return key(b) - key(a) || a.order - b.order;
      return a.order - b.order;
    });
    const grid = $("grid");
    sorted.forEach((c) => grid.append(c.card));
  }

  function applyBudget() {
    const b = state.budget;
    $("budget-out").textContent = b === "0" ? "original" : eps(b);
    for (const c of cards) {
      const [src, st, gain] = shown(c.id, b);
      if (c.img.getAttribute("src") !== src) c.img.setAttribute("src", src);
      c.card.classList.toggle("enhanced", st === "enhanced");
      c.card.classList.toggle("novariant", st === "missing");
      c.note.textContent = st === "original" ? "original"
        : st === "enhanced" ? eps(b) + " · gt logit " + (gain >= 0 ? "+" : "") + fmt(gain)
        : "no variant at " + eps(b) + ": original shown";
    }
  }

  function browser() {
    $("images-lead").textContent = "Showing " + D.items.length + " of " + D.total +
      " images: a seeded sample balanced over classes (report.sample = " + D.params.sample + "). " +
      "Images larger than " + D.params.thumbnail_px + " px are shown as thumbnails (report.thumbnail_px); " +
      "the full images are in the tables (data/" + D.corpus + "/images, enhanced/, metamers/).";
    const fc = $("f-class"), fs = $("f-split"), fa = $("f-alias");
    fc.append(option("", "all classes"));
    D.classes.forEach((c, i) => fc.append(option(String(i), c)));
    fs.append(option("", "all splits"));
    D.splitCounts.forEach(([s]) => fs.append(option(s, s)));
    if (D.aliases.length) D.aliases.forEach((a, k) => fa.append(option(String(k), a)));
    else {
      fa.append(option("", "scores not built"));
      ["f-alias", "f-dmin", "f-dmax", "f-sort"].forEach((id) => { $(id).disabled = true; });
    }
    D.items.forEach((item, k) => cards.push(makeCard(item, k)));
    applySort();
    const range = () => {
      let lo = Number($("f-dmin").value), hi = Number($("f-dmax").value);
      if (lo > hi) [lo, hi] = [hi, lo];
      Object.assign(state, { dmin: lo, dmax: hi });
      $("f-dmin-out").textContent = lo.toFixed(2);
      $("f-dmax-out").textContent = hi.toFixed(2);
    };
    range();
    fc.addEventListener("change", () => { state.cls = fc.value; applyFilters(); });
    fs.addEventListener("change", () => { state.split = fs.value; applyFilters(); });
    fa.addEventListener("change", () => { state.alias = Number(fa.value) || 0; applySort(); applyFilters(); });
    $("f-sort").addEventListener("change", (e) => { state.sort = e.target.value; applySort(); });
    ["f-dmin", "f-dmax"].forEach((id) => $(id).addEventListener("input", () => { range(); applyFilters(); }));
    budgetSlider();
    applyFilters();
  }

  function budgetSlider() {
    const s = $("budget");
    const steps = ["0"].concat(D.budgets);
    s.max = String(steps.length - 1);
    s.setAttribute("aria-valuetext", "original");
    if (!D.budgets.length) {
      s.disabled = true;
      $("budget-help").textContent = (D.configured && !D.configured.enhance
        ? "Enhancement not configured (corpora." + D.corpus + ".enhance.model is not set)"
        : "Enhanced images not built") + ": only originals can be shown.";
      return;
    }
    $("budget-help").textContent = "Drag (or use the arrow keys) to swap each image for its enhanced variant: 0 = original, then " +
      D.budgets.map(eps).join(", ") + " (L2, pixels in [0,1]).";
    const ticks = el("div", { class: "ticks", "aria-hidden": "true" },
      ...steps.map((b) => el("span", { text: b === "0" ? "orig." : b })));
    s.after(ticks);
    s.addEventListener("input", () => {
      state.budget = steps[Number(s.value)];
      s.setAttribute("aria-valuetext", state.budget === "0" ? "original" : eps(state.budget));
      applyBudget();
    });
    applyBudget();
  }

  /* ---------------------------------------------------------------- curricula */
  function curricula() {
    const body = $("curricula-body");
    const C = D.curricula;
    if (!C || !C.items.length) { body.append(empty(missing("Curricula", "curricula", !!C))); return; }
    const col = Object.fromEntries(C.columns.map((c, i) => [c, i]));
    const [fCur, sCur] = select("c-curriculum", "Curriculum", C.items.map((it, i) => [String(i), it.name]));
    const [fSeq, sSeq] = select("c-sequence", "Sequence", []);
    body.append(el("form", { class: "controls", "aria-label": "Curriculum picker" }, fCur, fSeq));
    const info = el("p", { class: "count", "aria-live": "polite" });
    const wrap = el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Trials" });
    body.append(info, wrap);
    const capped = C.items.some((it) => it.sequences.some((s) => !s.embedded));
    if (capped) body.insertBefore(el("p", { class: "note", text: "Trial images are embedded for the first " +
      (C.cap === 1 ? "sequence" : C.cap + " sequences") + " of each curriculum (report.curriculum_sequences); later sequences list their trials without images." }), info);

    function fillSequences() {
      sSeq.textContent = "";
      C.items[Number(sCur.value)].sequences.forEach((s, i) =>
        sSeq.append(option(String(i), s.name + (s.embedded ? "" : " (no images)"))));
      showTrials();
    }
    function showTrials() {
      const seq = C.items[Number(sCur.value)].sequences[Number(sSeq.value)];
      const rows = seq.trials;
      const blocks = new Set(rows.map((r) => r[col.block]));
      info.textContent = rows.length + " trials in " + blocks.size + " blocks, in presentation order.";
      const head = el("tr", {}, ...["Trial", "Block", "Phase", "Budget", "Feedback", "Class", "Difficulty", "Selection", "Image as shown"]
        .map((h, i) => el("th", { scope: "col", class: [0, 1, 3, 6].includes(i) ? "num" : null, text: h })));
      const tbody = el("tbody");
      let last = null;
      rows.forEach((r) => {
        const b = r[col.budget];
        let cell;
        if (!seq.embedded) cell = el("span", { class: "hint", text: "not embedded" });
        else {
          const [src, st] = shown(r[col.id], b);
          cell = src ? el("img", { class: "thumb", src, alt: cls(r[col.label]) + " trial " + r[col.trial] + (st === "enhanced" ? " enhanced" : "") })
            : el("span", { class: "hint", text: "image missing" });
          if (st === "missing") cell = el("span", {}, cell, el("span", { class: "hint", text: "variant not built" }));
        }
        const tr = el("tr", { class: r[col.block] !== last ? "block-start" : null, "data-id": r[col.id], "data-budget": b },
          el("td", { class: "num", text: r[col.trial] }), el("td", { class: "num", text: r[col.block] }),
          el("td", { text: r[col.phase] }), el("td", { class: "num", text: b === "0" ? "0 (natural)" : b }),
          el("td", { text: r[col.feedback] ? "yes" : "no" }), el("td", { text: cls(r[col.label]) }),
          el("td", { class: "num", text: fmt(r[col.difficulty]) }), el("td", { text: r[col.selection] || "" }),
          el("td", {}, cell));
        last = r[col.block];
        tbody.append(tr);
      });
      wrap.textContent = "";
      const name = C.items[Number(sCur.value)].name;
      wrap.append(el("table", { id: "trials" }, el("caption", { text: name + ", sequence " + seq.name }), el("thead", {}, head), tbody));
    }
    sCur.addEventListener("change", fillSequences);
    sSeq.addEventListener("change", showTrials);
    fillSequences();
  }

  /* ---------------------------------------------------------------- metamers */
  function matrixTable(M) {
    const table = el("table", { class: "matrix", id: "recognisability" },
      el("caption", { text: "Recognisability: share of each generator/layer's metamers assigned to the reference class " +
        "(passes = share meeting the match criteria; generator = its own model; then each judge)." }));
    table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "generator / layer" }),
      ...M.cols.map((c) => el("th", { scope: "col", class: "num", text: c })))));
    const tbody = el("tbody");
    M.rows.forEach((r, i) => {
      const tr = el("tr", {}, el("th", { scope: "row", text: r }));
      M.values[i].forEach((v) => {
        const td = el("td", { class: "num", text: fmt(v) });
        if (v !== null) td.style.background = "hsl(" + Math.round(v * 130) + " 62% 80%)";
        tr.append(td);
      });
      tbody.append(tr);
    });
    table.append(tbody);
    return el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Recognisability matrix" }, table);
  }

  function metamers() {
    const body = $("metamers-body");
    const M = D.metamers;
    if (!M || !M.total) { body.append(empty(missing("Metamers", "metamers", !!M))); return; }
    body.append(matrixTable(M.matrix));
    const gens = [...new Set(M.refs.flatMap((r) => r.metamers.map((m) => m[0])))];
    const [fGen, sGen] = select("m-generator", "Generator", [["", "all generators"]].concat(gens.map((g) => [g, g])));
    body.append(el("h3", { text: "Gallery" }),
      el("p", { class: "note", text: "Showing " + M.refs.length + " of " + M.total + " references (report.metamer_sample = " +
        D.params.metamer_sample + "); each reference beside its metamers, per generator and layer." }),
      el("form", { class: "controls", "aria-label": "Metamer filter" }, fGen));
    const list = el("div", { class: "refs" });
    body.append(list);
    const draw = () => {
      list.textContent = "";
      M.refs.forEach((ref) => list.append(refCard(ref, sGen.value)));
    };
    sGen.addEventListener("change", draw);
    draw();
  }

  function refCard(ref, only) {
    const rows = el("div", { class: "ref-rows" });
    const card = el("div", { class: "ref", "data-id": ref.id },
      el("figure", { class: "mm reference" },
        el("img", { class: "thumb", src: D.src[ref.id], alt: "reference " + ref.id + ", " + cls(ref.label) }),
        el("figcaption", {}, el("strong", { text: cls(ref.label) }), el("br"), "reference " + ref.id.slice(0, 8))),
      rows);
    const byGen = new Map();
    ref.metamers.filter((m) => !only || m[0] === only).forEach((m) => {
      if (!byGen.has(m[0])) byGen.set(m[0], []);
      byGen.get(m[0]).push(m);
    });
    for (const [gen, ms] of byGen) {
      const row = el("div", { class: "ref-row" }, el("div", { class: "gen", text: gen }));
      ms.forEach(([, layer, src, passes, pred]) => row.append(el("figure", { class: "mm" },
        el("img", { class: "thumb", src, alt: gen + " metamer at " + layer }),
        el("figcaption", {}, el("span", { class: "layer", text: layer }),
          el("span", { class: passes ? "pass" : "fail", text: passes === null ? "–" : passes ? "✓ pass" : "✗ fail" }),
          pred === null ? null : el("span", { text: "pred " + (/^\d+$/.test(pred) ? cls(Number(pred)) : pred) })))));
      rows.append(row);
    }
    if (!byGen.size) rows.append(el("p", { class: "hint", text: "no metamers from this generator" }));
    return card;
  }

  /* ---------------------------------------------------------------- figures */
  const STAGE_TITLES = { score: "Difficulty scores", enhance: "Enhancement", curriculum: "Curricula", metamers: "Metamers" };
  function figures() {
    const body = $("figures-body");
    if (!D.figures.length) { body.append(empty("Figures not built (no PNGs under plots/ yet).")); return; }
    const stages = [...new Set(D.figures.map((f) => f.stage))];
    stages.forEach((st) => {
      body.append(el("h3", { text: STAGE_TITLES[st] || st || "Other plots" }));
      const grid = el("div", { class: "figs" });
      D.figures.filter((f) => f.stage === st).forEach((f) => grid.append(
        el("figure", { class: "fig" }, el("img", { src: f.src, alt: (st ? st + ": " : "") + f.name }),
          el("figcaption", { text: f.name }))));
      body.append(grid);
    });
  }

  header();
  browser();
  curricula();
  metamers();
  figures();
})();
