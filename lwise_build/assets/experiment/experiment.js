/* lwise-build experiment runner: one participant sequence as a jsPsych 8 timeline.
 *
 * The page's inline JSON (#lwise-config) lists the conditions (curricula), their participant
 * sequences and every protocol value; a sequence's trial variables are a JSON list
 * (sequences/<condition>/<k>.json, or the .js twin when the page runs from file://).
 * Assignment is lwise-assign.js, saving lwise-store.js, preloading lwise-preload.js, the screens
 * lwise-trials.js and the end lwise-end.js. Every row is saved as it happens; a reload resumes at
 * the next trial.
 * docs/methods.md, "Experiments and analysis".
 */
(function () {
  "use strict";
  var L = window.LWISE;
  var cfg = JSON.parse(document.getElementById("lwise-config").textContent);
  var P = cfg.params;
  var esc = L.escapeHtml;

  function fail(message) {
    document.body.innerHTML = '<div class="lwise-error"><h2>The experiment cannot start</h2><p>' +
      esc(message) + "</p></div>";
    throw new Error(message);
  }

  var A = L.makeAssignment(cfg, P, fail), E = L.makeEnd(cfg, P);

  // ------------------------------------------------------------ the timeline ----------------
  function helpers(jsPsych, layout, info) {
    var v = function (name) { return jsPsych.evaluateTimelineVariable(name); };
    return {
      jsPsych: jsPsych, layout: layout, v: v, info: info,
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
    var shown = function () { return withImage ? L.stimulusHtml(h.current(), P) : '<div class="lwise-blank"></div>'; };
    var names = function () { return L.choiceNames(h.current(), h.layout, cfg.shapes); };
    var node = P.response === "keys" ? {
      type: jsPsychHtmlKeyboardResponse,
      stimulus: function () { return shown() + L.keyPrompt(names(), P.keys); },
      choices: function () { return P.keys.slice(0, names().length); },
      on_load: function () { L.ignoreKeys(P.click_delay_ms); },
    } : {
      type: jsPsychHtmlButtonResponse, stimulus: shown, choices: names,
      button_html: function (choice) { return '<button class="jspsych-btn lwise-choice">' + esc(choice) + "</button>"; },
      enable_button_after: P.click_delay_ms, grid_rows: null,
      grid_columns: function () { return L.gridColumns(names().length); },
      on_load: function () { if (P.choice_layout === "ring" && withImage) L.placeRing(); },
    };
    node.trial_duration = P.response_limit_ms === null ? null : P.response_limit_ms + P.click_delay_ms;
    node.data = { lwise_role: "response" };  // plus every trial variable
    Object.keys(trials[0]).forEach(function (k) { node.data[k] = h.jsPsych.timelineVariable(k); });
    node.on_finish = function (data) {
      var choice = P.response === "keys" ? (data.response === null ? null : P.keys.indexOf(data.response)) : data.response;
      data.choice = choice === -1 ? null : choice;
      data.timed_out = data.response === null;
      data.correct = data.choice === data.correct_choice;
      data.response_label = data.kind === "catch" || data.choice === null ? null : h.layout.choice_labels[data.choice];
      data.t_page_ms = performance.now();
      data.session_ms = Date.now() - h.info.store.state.first_load_ms;
      Object.assign(data, L.geometry(P));
      h.info.results.push({ position: data.position, kind: data.kind, phase: data.phase, correct: data.correct });
    };
    return node;
  }

  function feedbackNode(h) {
    var node;
    if (P.feedback === "self_paced") {
      var release = null;
      node = { type: jsPsychHtmlButtonResponse, choices: ["Continue"], data: h.tagged("feedback"),
        stimulus: function () { return L.feedbackHtml(h.last(), h.current(), h.layout, P, true); },
        button_html: function (c) { return '<button class="jspsych-btn lwise-continue">' + esc(c) + "</button>"; },
        enable_button_after: function () { return h.last().correct ? P.feedback_correct_ms : P.feedback_incorrect_ms; },
        on_load: function () { release = L.spaceClicks(); },
        on_finish: function () { if (release) release(); } };
    } else {
      node = { type: jsPsychHtmlKeyboardResponse, choices: "NO_KEYS", data: h.tagged("feedback"),
        stimulus: function () { return L.feedbackHtml(h.last(), h.current(), h.layout, P, false); },
        trial_duration: function () { return h.last().correct ? P.feedback_correct_ms : P.feedback_incorrect_ms; } };
    }
    return { timeline: [node], conditional_function: function () { return h.v("feedback") === true; } };
  }

  function trialSteps(h, trials) {
    var image = function () { return [h.v("image")]; };
    var steps = [{ timeline: [L.waitScreen(h.jsPsych, h.info.preload, image, "Loading the next image…")],
      conditional_function: function () { h.info.preload.advance(h.v("image")); return !h.info.preload.ready(image()); } }];
    if (P.fixation_ms > 0) {
      steps.push({ type: jsPsychHtmlKeyboardResponse, stimulus: '<div class="lwise-fixation">+</div>',
        choices: "NO_KEYS", trial_duration: P.fixation_ms, data: h.tagged("fixation") });
    }
    if (P.stimulus_ms !== null) {  // a fixed-duration image, then a blank, then the choice screen
      steps.push({ type: jsPsychHtmlKeyboardResponse, stimulus: function () { return L.stimulusHtml(h.current(), P); },
        choices: "NO_KEYS", trial_duration: P.stimulus_ms, data: h.tagged("stimulus") });
      if (P.post_stimulus_ms > 0) steps.push(h.blank(P.post_stimulus_ms, h.tagged("post_stimulus")));
    }
    steps.push(responseNode(h, trials), feedbackNode(h));
    if (P.gap_ms > 0) steps.push(h.blank(P.gap_ms, h.tagged("gap")));
    return steps;
  }

  function page(html, button, role) {
    return { type: jsPsychHtmlButtonResponse, stimulus: '<div class="lwise-text">' + html + "</div>",
      choices: [button], data: { lwise_role: role } };
  }

  function blockGroups(trials) {
    var blocks = [];
    trials.forEach(function (t) {
      if (!blocks.length || blocks[blocks.length - 1].block !== t.block) blocks.push({ block: t.block, phase: t.phase, trials: [] });
      blocks[blocks.length - 1].trials.push(t);
    });
    return blocks;
  }

  function introPages(layout) {
    var out = [];
    if (P.consent_text) out.push(page(L.consentPage(cfg, P), "I agree", "consent"));
    L.instructionPages(cfg, P, layout).forEach(function (html) { out.push(page(html, "Continue", "instructions")); });
    var limit = L.timeLimitPage(P);
    if (limit) out.push(page(limit, "Continue", "instructions"));
    return out;
  }

  function build(jsPsych, trials, layout, info, start) {
    var h = helpers(jsPsych, layout, info);
    var steps = trialSteps(h, trials), rest = trials.slice(start);
    var timeline = start > 0 ? [page(L.resumeText(start, trials.length), "Continue", "resume")] : introPages(layout);
    var first = info.preload.urls.slice(0, P.preload_chunk);
    timeline.push(L.waitScreen(jsPsych, info.preload, function () { return first; }, "Loading images…"));
    var all = blockGroups(trials), groups = blockGroups(rest);
    groups.forEach(function (g, i) {
      var k = all.map(function (a) { return a.block; }).indexOf(g.block);
      var startsBlock = g.trials[0].position === all[k].trials[0].position;
      if (P.block_breaks && k > 0 && startsBlock) timeline.push(page(L.breakText(k, all.length, g.phase, all[k - 1].phase), "Continue", "break"));
      timeline.push({ timeline: steps, timeline_variables: g.trials });
    });
    timeline.push(E.endNode(info));
    return timeline;
  }

  // ------------------------------------------------------------ start -----------------------
  function begin(who, query, collector) {
    var ident = { participant: who.id, build: cfg.build, condition: null, sequence: null };
    var targets = L.liveTargets(P, collector, ident);
    if (!targets.length && P.save.indexOf("download") < 0) {
      fail("This page has nowhere to save your responses (params experiment.save: " + P.save.join(", ") +
        "; none is available here). Please contact the researchers.");
    }
    var assigned = collector ? A.serverAssign(who, query) : A.localAssign(who.id, query);
    return assigned.then(function (a) {
      ident.condition = a.condition;
      ident.sequence = a.sequence;
      return run(who, a, targets);
    });
  }

  function run(who, a, targets) {
    var layout = cfg.conditions[a.condition].sequences[a.sequence];
    var key = L.checkpointKey(cfg.build, who.id), saved = L.readCheckpoint(key);
    if (saved && (saved.condition !== a.condition || saved.sequence !== a.sequence)) saved = null;
    var info = { participant: who.id, who: who, condition: a.condition, sequence: a.sequence, results: (a.trials || []).slice() };
    info.store = new L.Store(key, saved, targets, P.batch_rows, { participant: who.id, condition: a.condition,
      sequence: a.sequence, loads: a.loads });
    info.store.state.rows.forEach(function (r) { if (r.lwise_role === "response") info.results.push(r); });
    var query = new URLSearchParams(window.location.search);
    var jsPsych = initJsPsych({ on_data_update: function (row) { info.store.add(row); },
      on_finish: function () { return E.finish(jsPsych, info); } });
    jsPsych.data.addProperties({
      participant: who.id, participant_source: who.source, prolific_pid: query.get("PROLIFIC_PID"),
      study_id: query.get("STUDY_ID"), session_id: query.get("SESSION_ID"), condition: a.condition,
      sequence: a.sequence, assignment: a.how, index: a.index, corpus: cfg.corpus, experiment_build: cfg.build,
      choice_names: layout.choice_names, choice_labels: layout.choice_labels, response_mode: P.response,
      saved_to: targets.map(function (t) { return t.name; }).join(",") || "download",
    });
    window.lwiseExperiment = { config: cfg, assignment: a, participant: who, jsPsych: jsPsych, info: info };
    return loadSequence(layout.file).then(function (trials) {
      if (!trials || !trials.length) fail("The trial file " + layout.file + " is empty.");
      var done = info.results.map(function (r) { return r.position; });
      var start = done.length ? Math.max.apply(null, done) + 1 : 0;
      if (info.store.state.completed || a.completed) return E.finish(jsPsych, info);
      if (start >= trials.length) return jsPsych.run([E.endNode(info)]);  // every trial saved, the end was not
      var urls = [];
      trials.slice(start).forEach(function (t) { if (t.image && urls.indexOf(t.image) < 0) urls.push(t.image); });
      info.preload = new L.Preloader(urls, P.preload_chunk, P.preload_retries).start();
      return jsPsych.run(build(jsPsych, trials, layout, info, start));
    });
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

  if (typeof initJsPsych === "undefined" || typeof jsPsychHtmlButtonResponse === "undefined") {
    fail("jsPsych could not be loaded from " + cfg.library_hint + ". Check params experiment.library_url.");
  }
  var query = new URLSearchParams(window.location.search);
  var who = A.participant(query);
  Promise.all([L.probeCollector(cfg), L.jatosReady(P)]).then(function (live) { return begin(who, query, live[0]); })
    .catch(function (e) { if (!/cannot start/.test(document.body.textContent)) fail(e.message || String(e)); });
})();
