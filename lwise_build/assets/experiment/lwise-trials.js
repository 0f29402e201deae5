/* lwise-build experiment: what each screen shows (the reference protocol, docs/methods.md).
 *
 * The image (or a catch shape) with its choices in a ring around it or in rows below, or a key
 * prompt; self-paced feedback that accepts the space bar or its button only after the lockout;
 * the consent, instruction, time-limit/bonus and break pages. Every value comes from the params.
 */
(function () {
  "use strict";
  var L = (window.LWISE = window.LWISE || {});

  L.escapeHtml = function (text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  };
  var esc = L.escapeHtml;

  /* The image side in CSS px: a fraction of the smaller screen side, capped at a fraction of the
   * smaller window side (the reference's 12 degrees at an assumed distance, capped at 70%). */
  L.stimulusPx = function (P) {
    if (P.image_px) return P.image_px;
    var screenSide = Math.min(window.screen.width || window.innerWidth, window.screen.height || window.innerHeight);
    var windowSide = Math.min(window.innerWidth, window.innerHeight);
    return Math.max(16, Math.round(Math.min(P.stimulus_size * screenSide, P.stimulus_max * windowSide)));
  };

  L.geometry = function (P) {
    return { screen_w: window.screen.width, screen_h: window.screen.height, window_w: window.innerWidth,
      window_h: window.innerHeight, device_pixel_ratio: window.devicePixelRatio || 1, stimulus_px: L.stimulusPx(P) };
  };

  L.stimulusHtml = function (t, P) {
    var s = L.stimulusPx(P);
    var inner;
    if (t.kind === "catch") {
      var shape = t.shape === "circle" ? '<circle cx="50" cy="50" r="38" fill="#111"/>'
        : '<polygon points="50,10 92,86 8,86" fill="#111"/>';
      var k = Math.round(s * 0.6);
      inner = '<svg class="lwise-shape" data-shape="' + esc(t.shape) + '" width="' + k + '" height="' + k +
        '" viewBox="0 0 100 100" role="img" aria-label="shape">' + shape + "</svg>";
    } else {
      inner = '<img class="lwise-image" src="' + esc(t.image) + '" width="' + s + '" height="' + s +
        '" alt="" draggable="false">';
    }
    var ring = P.response === "buttons" && P.choice_layout === "ring";
    return '<div class="lwise-stage' + (ring ? " lwise-stage-ring" : "") + '"><div class="lwise-stimulus" style="width:' +
      s + "px;height:" + s + 'px">' + inner + "</div></div>";
  };

  L.choiceNames = function (t, layout, shapes) {
    return t.kind === "catch" ? shapes.map(function (s) { return s[0].toUpperCase() + s.slice(1); }) : layout.choice_names;
  };

  L.keyPrompt = function (names, keys) {
    return '<p class="lwise-prompt">' + names.map(function (n, i) {
      return "<b>" + esc(keyName(keys[i])) + "</b> = " + esc(n);
    }).join(" &nbsp; ") + "</p>";
  };

  function keyName(k) { return k === " " ? "space" : k.toUpperCase(); }

  L.gridColumns = function (n) {
    // at most 6 buttons per row, rows of equal length where possible (10 classes: 2 x 5)
    return n <= 6 ? n : Math.ceil(n / Math.ceil(n / 6));
  };

  /* Buttons in a ring around the stimulus: evenly spaced, the first at the upper right, each
   * clear of the image by a margin (placed after the plugin drew them). */
  L.placeRing = function () {
    var group = document.getElementById("jspsych-html-button-response-btngroup");
    var stim = document.querySelector(".lwise-stimulus");
    var content = document.querySelector(".jspsych-content");
    if (!group || !stim || !content) return;
    content.style.position = "relative";
    group.classList.add("lwise-ring");
    var c = content.getBoundingClientRect(), s = stim.getBoundingClientRect();
    var cx = s.left + s.width / 2 - c.left, cy = s.top + s.height / 2 - c.top, half = s.width / 2;
    var buttons = Array.prototype.slice.call(group.querySelectorAll("button"));
    buttons.forEach(function (b, i) {
      var a = -Math.PI / 2 + (i + 0.5) * 2 * Math.PI / buttons.length;
      var ca = Math.cos(a), sa = Math.sin(a);
      var edge = half / Math.max(Math.abs(ca), Math.abs(sa));
      var r = edge + 16 + (b.offsetWidth / 2) * Math.abs(ca) + (b.offsetHeight / 2) * Math.abs(sa);
      b.style.left = Math.round(cx + r * ca - b.offsetWidth / 2) + "px";
      b.style.top = Math.round(cy + r * sa - b.offsetHeight / 2) + "px";
    });
  };

  /* Keys pressed during the click delay never reach jsPsych (a capture listener drops them). */
  var blocked = null;
  L.ignoreKeys = function (ms) {
    if (blocked) window.removeEventListener("keydown", blocked, true);
    blocked = null;
    if (!ms) return;
    var until = performance.now() + ms;
    blocked = function (e) { if (performance.now() < until) e.stopImmediatePropagation(); };
    window.addEventListener("keydown", blocked, true);
  };

  /* The feedback text: right, wrong or too slow, the image again and its class. */
  L.feedbackHtml = function (last, t, layout, P, button) {
    var answer = t.kind === "catch" ? "a " + t.shape : esc(layout.choice_names[last.correct_choice]);
    var head = last.correct ? '<div class="lwise-feedback lwise-correct">Correct</div>'
      : '<div class="lwise-feedback lwise-incorrect">' + (last.timed_out ? "Too slow" : "Incorrect") + "</div>";
    var hint = button ? '<p class="lwise-hint">Press the space bar or click Continue when you are ready.</p>' : "";
    return head + L.stimulusHtml(t, { image_px: last.stimulus_px, response: "keys" }) +
      '<p class="lwise-prompt">This is <b>' + answer + "</b>.</p>" + hint;
  };

  /* Self-paced feedback: a Continue button the plugin enables after the lockout; the space bar
   * clicks it once it is enabled (so the lockout holds for both). */
  L.spaceClicks = function () {
    var listener = function (e) {
      if (e.key !== " " && e.code !== "Space") return;
      e.preventDefault();
      var b = document.querySelector("#jspsych-html-button-response-btngroup button");
      if (b && !b.disabled) { b.click(); }
    };
    document.addEventListener("keydown", listener);
    return function () { document.removeEventListener("keydown", listener); };
  };

  // ------------------------------------------------------------ pages -------------------------
  L.consentPage = function (cfg, P) {
    var link = P.consent_url ? '<p><a href="' + esc(P.consent_url) + '" target="_blank" rel="noopener">Read the full ' +
      "consent form</a></p>" : "";
    return "<h2>" + esc(cfg.title) + "</h2>" + P.consent_text + link +
      "<p>By clicking <b>I agree</b> you consent to take part. If you do not agree, close this window.</p>";
  };

  L.instructionPages = function (cfg, P, layout) {
    if (P.instructions.length) return P.instructions.slice();
    var how = P.response === "keys" ? "pressing the key of its category" : "clicking the button with its category";
    var feedback = P.feedback === "self_paced" ? " and stays until you press the space bar (or click Continue)" : "";
    return ["<h2>" + esc(cfg.title) + "</h2><p>You will learn to tell apart " + layout.choice_names.length +
      " categories of images: " + layout.choice_names.map(esc).join(", ") + ".</p><p>On each trial an image " +
      "appears. Say which category it belongs to by " + how + ". In training blocks you are then told whether you " +
      "were right and what the image was" + feedback + "; test blocks have no feedback. Sometimes a simple shape " +
      "appears instead: just name the shape.</p><p>Please answer as accurately and as quickly as you can.</p>"];
  };

  L.bonusText = function (P) {
    return P.bonus_thresholds.map(function (t, i) {
      return P.bonus_currency + " " + P.bonus_amounts[i] + " at " + Math.round(t * 100) + "%";
    }).join(", ");
  };

  L.timeLimitPage = function (P) {
    var parts = [];
    if (P.response_limit_ms) {
      parts.push("<p>You have <b>" + (P.response_limit_ms / 1000) + " seconds</b> to answer each image. If you take " +
        "longer, the trial counts as wrong and the next one begins.</p>");
    }
    if (P.bonus_thresholds.length) {
      parts.push("<p>You can earn a <b>bonus</b> for your accuracy in the test blocks at the end: " + esc(L.bonusText(P)) +
        " of the test images answered correctly (the highest tier you reach).</p>");
    }
    return parts.length ? "<h2>Time limit" + (P.bonus_thresholds.length ? " and bonus" : "") + "</h2>" + parts.join("") : null;
  };

  L.breakText = function (done, total, nextPhase, prevPhase) {
    var test = nextPhase === "test" && prevPhase !== "test";
    return "<p>Block " + done + " of " + total + " done. Take a short break if you like.</p>" +
      (test ? "<p>Next come the <b>test blocks</b>: you will not be told whether your answers are right. " +
        "Answer as well as you can.</p>" : "");
  };

  L.resumeText = function (position, total) {
    return "<h2>Welcome back</h2><p>Your earlier answers are saved. You continue at trial " + (position + 1) + " of " +
      total + ".</p>";
  };

  /* The bonus earned at a test accuracy (the highest tier reached), or null. */
  L.bonusFor = function (accuracy, P) {
    var amount = null;
    P.bonus_thresholds.forEach(function (t, i) { if (accuracy !== null && accuracy >= t - 1e-9) amount = P.bonus_amounts[i]; });
    return amount;
  };
})();
