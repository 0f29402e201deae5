/* lwise-build experiment: the end of a session. The last trial's outcome (test accuracy, catch
 * accuracy, bonus tier, completion or screen-out code), "Saving your responses" until every live
 * target acknowledged every row, then the end screen and the redirect (or a download link when the
 * rows could not be sent); docs/methods.md, "Experiments and analysis".
 */
(function () {
  "use strict";
  var L = (window.LWISE = window.LWISE || {});

  L.makeEnd = function (cfg, P) {
    var esc = L.escapeHtml;
    function outcome(results) {
      var by = {};
      results.forEach(function (r) { by[r.position] = r; });
      var list = Object.keys(by).map(function (k) { return by[k]; });
      var test = list.filter(function (r) { return r.kind === "main" && r.phase === "test"; });
      var catches = list.filter(function (r) { return r.kind === "catch"; });
      var mean = function (xs) { return xs.length ? xs.filter(function (r) { return r.correct; }).length / xs.length : null; };
      var acc = mean(test), catchAcc = mean(catches);
      var screened = !!P.screenout_code && catchAcc !== null && catchAcc < P.screenout_catch_accuracy;
      return { test_accuracy: acc, catch_accuracy: catchAcc, bonus: screened ? null : L.bonusFor(acc, P),
        bonus_currency: P.bonus_currency, outcome: screened ? "screened_out" : "complete",
        code: screened ? P.screenout_code : P.completion_code };
    }

    function endNode(info) {
      return { type: jsPsychHtmlKeyboardResponse, stimulus: '<div class="lwise-blank"></div>', choices: "NO_KEYS",
        trial_duration: 0, data: { lwise_role: "end" },
        on_finish: function (data) { Object.assign(data, outcome(info.results)); info.end = data; } };
    }

    function completionUrl(info, end) {
      var template = P.completion_url;
      if (!template && end.code) template = "https://app.prolific.com/submissions/complete?cc={code}";
      if (!template) return null;
      return template.replace("{participant}", encodeURIComponent(info.participant)).replace("{code}", encodeURIComponent(end.code || ""));
    }

    function endScreen(jsPsych, info, problem) {
      var end = info.end || outcome(info.results), url = problem ? null : completionUrl(info, end);
      var lines = [P.completion_text];
      if (P.show_accuracy && end.test_accuracy !== null) {
        lines.push("<p>You answered <b>" + Math.round(100 * end.test_accuracy) + "%</b> of the test images correctly.</p>");
        if (P.bonus_thresholds.length) {
          lines.push(end.bonus !== null ? "<p>Your bonus: <b>" + esc(P.bonus_currency + " " + end.bonus) + "</b>.</p>"
            : "<p>This is below the first bonus tier (" + esc(L.bonusText(P)) + ").</p>");
        }
      }
      if (problem) {
        lines.push('<p class="lwise-error">Your responses could not be saved (' + esc(problem) + '). <a id="lwise-download" ' +
          'href="#">Download them</a> and send the file to the researchers.</p>');
      }
      if (end.code) lines.push('<p>Completion code: <b id="lwise-code">' + esc(end.code) + "</b></p>");
      if (url) lines.push('<p>Returning you to the study site… <a href="' + esc(url) + '">continue</a></p>');
      jsPsych.getDisplayElement().innerHTML = '<div class="lwise-done" id="lwise-complete">' + lines.join("") + "</div>";
      var link = document.getElementById("lwise-download");
      if (link) link.onclick = function (e) { e.preventDefault(); download(jsPsych, info); };
      if (url) setTimeout(function () { window.location.assign(url); }, 1500);
    }

    function fileName(info, format) {
      var safe = String(info.participant).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
      return "lwise-" + cfg.corpus + "-" + info.condition + "-" + info.sequence + "-" + safe + "." + format;
    }

    function download(jsPsych, info) { info.store.collection(jsPsych).localSave(P.data_format, fileName(info, P.data_format)); }

    function finish(jsPsych, info) {
      info.store.state.completed = true;
      info.store.persist();
      jsPsych.getDisplayElement().innerHTML = '<div class="lwise-done" id="lwise-saving"><p>Saving your responses…</p></div>';
      if (!info.store.targets.length) {
        download(jsPsych, info);
        return endScreen(jsPsych, info, null);
      }
      return info.store.settle(20000).then(function () {
        if (info.who.source === "random") { try { window.localStorage.removeItem("lwise:" + cfg.build + ":anon"); } catch (e) { /* none */ } }
        endScreen(jsPsych, info, null);
      }, function (e) { endScreen(jsPsych, info, e.message || String(e)); });
    }

    return { endNode: endNode, finish: finish };
  };
})();
