/* lwise-build experiment runner: one participant sequence as a jsPsych 8 timeline.
 *
 * The page's inline JSON (#lwise-config) lists the conditions (curricula), their participant
 * sequences and every timing value; the trial variables of a sequence are a JSON list
 * (sequences/<condition>/<k>.json, or the .js twin when the page runs from file://).
 * Assignment: ?condition= and ?sequence= when given, else a hash of the participant id
 * (PROLIFIC_PID, or the configured URL parameter) picks both, following the condition weights.
 * The same rule is lwise_build.ops.experiment_design.assign (docs/methods.md, "Experiments").
 */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("lwise-config").textContent);
  var P = cfg.params;
  var SHAPES = cfg.shapes;

  function fnv1a(text) {
    var bytes = new TextEncoder().encode(text);
    var h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) {
      h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
    }
    return h >>> 0;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function fail(message) {
    document.body.innerHTML = '<div class="lwise-error"><h2>The experiment cannot start</h2><p>' +
      escapeHtml(message) + "</p></div>";
    throw new Error(message);
  }

  function participant(query) {
    var prolific = query.get("PROLIFIC_PID");
    var given = query.get(P.participant_param);
    if (prolific) return { id: prolific, source: "prolific" };
    if (given) return { id: given, source: "url" };
    var bytes = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var hex = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); });
    return { id: "anon-" + hex.join(""), source: "random" };
  }

  function byIndex(names, index) {
    // blocked slots as the reference deployment: each condition `weight` times, in order; the
    // participant takes slot index % slots and the next unused sequence of that condition
    // (lwise_build.config.curricula.participant_condition)
    var slots = [];
    names.forEach(function (n) { for (var w = 0; w < cfg.conditions[n].weight; w++) slots.push(n); });
    var k = index % slots.length, name = slots[k];
    var before = slots.slice(0, k).filter(function (s) { return s === name; }).length;
    return { condition: name, sequence: Math.floor(index / slots.length) * cfg.conditions[name].weight + before };
  }

  function byHash(names, pid) {
    var total = names.reduce(function (s, n) { return s + cfg.conditions[n].weight; }, 0);
    var u = fnv1a(cfg.seed + ":" + pid + ":condition") / 4294967296;
    var acc = 0, condition = names[0];
    for (var i = 0; i < names.length; i++) {
      acc += cfg.conditions[names[i]].weight / total;
      condition = names[i];
      if (u < acc) break;
    }
    return condition;
  }

  function assign(pid, query) {
    var names = cfg.fixed_condition ? [cfg.fixed_condition] : cfg.order;
    var condition = query.get("condition"), text = query.get("sequence"), index = query.get(P.index_param);
    if (condition !== null && names.indexOf(condition) < 0) fail("Unknown condition " + condition + ".");
    var how = condition === null ? "hash" : "url", sequence = null;
    if (condition === null && index !== null) {
      if (!/^\d+$/.test(index)) fail("The participant index " + index + " is not a whole number.");
      var slot = byIndex(names, Number(index));
      condition = slot.condition;
      how = "index";
      if (text === null) sequence = slot.sequence;
    }
    if (condition === null) condition = byHash(names, pid);
    var count = cfg.conditions[condition].sequences.length;
    if (text !== null) sequence = Number(text);
    else if (sequence === null) sequence = fnv1a(cfg.seed + ":" + pid + ":sequence:" + condition) % count;
    if (!(Number.isInteger(sequence) && sequence >= 0 && sequence < count)) {
      fail("Sequence " + (text === null ? sequence : text) + " does not exist (condition " + condition + " has " +
        count + " sequences; build more with curricula." + condition + ".sequences).");
    }
    return { condition: condition, sequence: sequence, how: how };
  }

  function loadSequence(file) {
    if (window.location.protocol === "file:") {
      return new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = file + ".js";
        s.onload = function () { resolve(window.lwiseSequences[file]); };
        s.onerror = function () { reject(new Error("cannot load " + file + ".js")); };
        document.head.appendChild(s);
      });
    }
    return fetch(file + ".json").then(function (r) {
      if (!r.ok) throw new Error("cannot load " + file + ".json (HTTP " + r.status + ")");
      return r.json();
    });
  }

  // ------------------------------------------------------------ what a trial shows ----------
  function stimulusHtml(t) {
    if (t.kind === "catch") {
      var s = Math.round(P.image_px * 0.6);
      var shape = t.shape === "circle"
        ? '<circle cx="50" cy="50" r="38" fill="#111"/>'
        : '<polygon points="50,10 92,86 8,86" fill="#111"/>';
      return '<svg class="lwise-shape" data-shape="' + t.shape + '" width="' + s + '" height="' + s +
        '" viewBox="0 0 100 100" role="img" aria-label="shape">' + shape + "</svg>";
    }
    return '<img class="lwise-image" src="' + t.image + '" width="' + P.image_px + '" height="' +
      P.image_px + '" alt="" draggable="false">';
  }

  function choiceNames(t, layout) {
    return t.kind === "catch" ? SHAPES.map(function (s) { return s[0].toUpperCase() + s.slice(1); }) : layout.choice_names;
  }

  function gridColumns(n) {
    // at most 6 buttons per row, rows of equal length where possible (10 classes: 2 x 5)
    return n <= 6 ? n : Math.ceil(n / Math.ceil(n / 6));
  }

  function keyPrompt(names) {
    return '<p class="lwise-prompt">' + names.map(function (n, i) {
      return "<b>" + escapeHtml(P.keys[i].toUpperCase()) + "</b> = " + escapeHtml(n);
    }).join(" &nbsp; ") + "</p>";
  }

  function blockGroups(trials) {
    var blocks = [];
    trials.forEach(function (t) {
      if (!blocks.length || blocks[blocks.length - 1].block !== t.block) blocks.push({ block: t.block, phase: t.phase, trials: [] });
      blocks[blocks.length - 1].trials.push(t);
    });
    return blocks;
  }

  // ------------------------------------------------------------ the timeline ----------------
  function helpers(jsPsych, layout) {
    var v = function (name) { return jsPsych.evaluateTimelineVariable(name); };
    return {
      jsPsych: jsPsych, layout: layout, v: v,
      current: function () { return { kind: v("kind"), shape: v("shape"), image: v("image") }; },
      last: function () { return jsPsych.data.get().last(1).values()[0]; },
      tagged: function (role) {  // screens of a trial carry its block, phase and position
        return { lwise_role: role, block: jsPsych.timelineVariable("block"), phase: jsPsych.timelineVariable("phase"),
          position: jsPsych.timelineVariable("position") };
      },
      blank: function (ms, data) {
        return { type: jsPsychHtmlKeyboardResponse, stimulus: '<div class="lwise-blank"></div>', choices: "NO_KEYS",
          trial_duration: ms, data: data };
      },
    };
  }

  function responseNode(h, trials) {
    var withImage = P.stimulus_ms === null;
    var shown = function () { return withImage ? stimulusHtml(h.current()) : '<div class="lwise-blank"></div>'; };
    var names = function () { return choiceNames(h.current(), h.layout); };
    var node = P.response === "keys" ? {
      type: jsPsychHtmlKeyboardResponse,
      stimulus: function () { return shown() + keyPrompt(names()); },
      choices: function () { return P.keys.slice(0, names().length); },
      on_load: function () { ignoreKeys(P.click_delay_ms); },
    } : {
      type: jsPsychHtmlButtonResponse, stimulus: shown, choices: names,
      button_html: function (choice) { return '<button class="jspsych-btn lwise-choice">' + escapeHtml(choice) + "</button>"; },
      enable_button_after: P.click_delay_ms, grid_rows: null,
      grid_columns: function () { return gridColumns(names().length); },
    };
    node.trial_duration = P.response_limit_ms;
    node.data = { lwise_role: "response" };  // plus every trial variable
    Object.keys(trials[0]).forEach(function (k) { node.data[k] = h.jsPsych.timelineVariable(k); });
    node.on_finish = function (data) {
      var choice = P.response === "keys" ? (data.response === null ? null : P.keys.indexOf(data.response)) : data.response;
      data.choice = choice === -1 ? null : choice;
      data.timed_out = data.response === null;
      data.correct = data.choice === data.correct_choice;
      data.response_label = data.kind === "catch" || data.choice === null ? null : h.layout.choice_labels[data.choice];
    };
    return node;
  }

  function feedbackNode(h) {
    var node = {
      type: jsPsychHtmlKeyboardResponse, choices: "NO_KEYS", data: h.tagged("feedback"),
      stimulus: function () {
        var last = h.last(), t = h.current();
        var answer = t.kind === "catch" ? "a " + t.shape : escapeHtml(h.layout.choice_names[last.correct_choice]);
        var head = last.correct ? '<div class="lwise-feedback lwise-correct">Correct</div>'
          : '<div class="lwise-feedback lwise-incorrect">' + (last.timed_out ? "Too slow" : "Incorrect") + "</div>";
        return head + stimulusHtml(t) + '<p class="lwise-prompt">This is <b>' + answer + "</b>.</p>";
      },
      trial_duration: function () { return h.last().correct ? P.feedback_correct_ms : P.feedback_incorrect_ms; },
    };
    return { timeline: [node], conditional_function: function () { return h.v("feedback") === true; } };
  }

  function trialSteps(h, trials) {
    var steps = [];
    if (P.fixation_ms > 0) {
      steps.push({ type: jsPsychHtmlKeyboardResponse, stimulus: '<div class="lwise-fixation">+</div>',
        choices: "NO_KEYS", trial_duration: P.fixation_ms, data: h.tagged("fixation") });
    }
    if (P.stimulus_ms !== null) {  // a fixed-duration image, then a blank, then the choice screen
      steps.push({ type: jsPsychHtmlKeyboardResponse, stimulus: function () { return stimulusHtml(h.current()); },
        choices: "NO_KEYS", trial_duration: P.stimulus_ms, data: h.tagged("stimulus") });
      if (P.post_stimulus_ms > 0) steps.push(h.blank(P.post_stimulus_ms, h.tagged("post_stimulus")));
    }
    steps.push(responseNode(h, trials), feedbackNode(h));
    if (P.gap_ms > 0) steps.push(h.blank(P.gap_ms, h.tagged("gap")));
    return steps;
  }

  function build(jsPsych, trials, layout) {
    var h = helpers(jsPsych, layout);
    var steps = trialSteps(h, trials);
    var images = trials.filter(function (t) { return t.image; }).map(function (t) { return t.image; });
    var timeline = [{ type: jsPsychPreload, images: Array.from(new Set(images)), show_progress_bar: true,
      continue_after_error: false, message: "Loading images…", data: { lwise_role: "preload" } }];
    instructionPages(layout).forEach(function (html) { timeline.push(page(html, "Continue", "instructions")); });
    var groups = blockGroups(trials);
    groups.forEach(function (g, i) {
      if (i > 0 && P.block_breaks) timeline.push(page(breakText(i, groups), "Continue", "break"));
      timeline.push({ timeline: steps, timeline_variables: g.trials });
    });
    timeline.push(h.blank(0, { lwise_role: "end" }));
    return timeline;
  }

  function page(html, button, role) {
    return { type: jsPsychHtmlButtonResponse, stimulus: '<div class="lwise-text">' + html + "</div>",
      choices: [button], data: { lwise_role: role } };
  }

  function breakText(i, groups) {
    var next = groups[i];
    var test = next.phase === "test" && groups[i - 1].phase !== "test";
    return "<p>Block " + i + " of " + groups.length + " done. Take a short break if you like.</p>" +
      (test ? "<p>Next comes a <b>test block</b>: you will not be told whether your answers are right.</p>" : "");
  }

  function instructionPages(layout) {
    if (P.instructions.length) return P.instructions;
    var how = P.response === "keys" ? "pressing the key of its category" : "clicking the button with its category";
    return ["<h2>" + escapeHtml(cfg.title) + "</h2><p>You will learn to tell apart " + layout.choice_names.length +
      " categories of images: " + layout.choice_names.map(escapeHtml).join(", ") + ".</p><p>On each trial an image " +
      "appears. Say which category it belongs to by " + how + ". In training blocks you are told whether you were " +
      "right and what the image was; test blocks have no feedback. Sometimes a simple shape appears instead: just " +
      "name the shape.</p><p>Please answer as accurately and as quickly as you can.</p>"];
  }

  var blocked = null;
  function ignoreKeys(ms) {
    if (blocked) window.removeEventListener("keydown", blocked, true);
    if (!ms) return;
    var until = performance.now() + ms;
    blocked = function (e) { if (performance.now() < until) e.stopImmediatePropagation(); };
    window.addEventListener("keydown", blocked, true);
  }

  // ------------------------------------------------------------ saving and the end -----------
  function fileName(info, format) {
    var safe = String(info.participant).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
    return "lwise-" + cfg.corpus + "-" + info.condition + "-" + info.sequence + "-" + safe + "." + format;
  }

  function save(jsPsych, info) {
    var data = jsPsych.data.get();
    var json = data.json();
    var jobs = [];
    if (window.jatos && typeof window.jatos.submitResultData === "function") {
      jobs.push(Promise.resolve(window.jatos.submitResultData(json)));
    }
    if (P.post_url) {
      jobs.push(fetch(P.post_url + (P.post_url.indexOf("?") < 0 ? "?" : "&") + "file=" + encodeURIComponent(fileName(info, "json")),
        { method: "POST", headers: { "Content-Type": "application/json" }, body: json }).then(function (r) {
        if (!r.ok) throw new Error("the server answered HTTP " + r.status);
      }));
    }
    if (P.download) data.localSave(P.data_format, fileName(info, P.data_format));
    return Promise.all(jobs);
  }

  function finish(jsPsych, info) {
    var done = function (problem) {
      var el = jsPsych.getDisplayElement();
      var url = P.completion_url ? P.completion_url.replace("{participant}", encodeURIComponent(info.participant)) : null;
      el.innerHTML = '<div class="lwise-done" id="lwise-complete">' + P.completion_text +
        (problem ? '<p class="lwise-error">Your responses could not be sent (' + escapeHtml(problem) +
          '). <a id="lwise-download" href="#">Download them</a> and send the file to the researchers.</p>' : "") +
        (P.download && !problem ? '<p class="lwise-prompt">A copy of your responses was saved as ' +
          escapeHtml(fileName(info, P.data_format)) + ".</p>" : "") +
        (url ? "<p>Returning you to the study site…</p>" : "") + "</div>";
      var link = document.getElementById("lwise-download");
      if (link) link.onclick = function (e) { e.preventDefault(); jsPsych.data.get().localSave(P.data_format, fileName(info, P.data_format)); };
      if (url && !problem) setTimeout(function () { window.location.assign(url); }, 1500);
    };
    return save(jsPsych, info).then(function () { done(null); }, function (e) { done(e.message || String(e)); });
  }

  // ------------------------------------------------------------ start -----------------------
  if (typeof initJsPsych === "undefined" || typeof jsPsychHtmlButtonResponse === "undefined") {
    fail("jsPsych could not be loaded from " + cfg.library_hint + ". Check params experiment.library_url.");
  }
  var query = new URLSearchParams(window.location.search);
  var who = participant(query);
  var info = assign(who.id, query);
  info.participant = who.id;
  var layout = cfg.conditions[info.condition].sequences[info.sequence];
  var jsPsych = initJsPsych({ on_finish: function () { return finish(jsPsych, info); } });
  jsPsych.data.addProperties({
    participant: who.id, participant_source: who.source, condition: info.condition, sequence: info.sequence,
    assignment: info.how, corpus: cfg.corpus, experiment_build: cfg.build, choice_names: layout.choice_names,
    choice_labels: layout.choice_labels, response_mode: P.response,
  });
  window.lwiseExperiment = { config: cfg, assignment: info, participant: who, jsPsych: jsPsych };
  loadSequence(layout.file).then(function (trials) {
    if (!trials || !trials.length) fail("The trial file " + layout.file + " is empty.");
    jsPsych.run(build(jsPsych, trials, layout));
  }, function (e) { fail(e.message); });
})();
