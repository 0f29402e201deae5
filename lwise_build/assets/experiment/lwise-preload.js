/* lwise-build experiment: images load in chunks ahead of need, with retries and visible progress.
 *
 * The images are listed in order of first use. Up to 4 load at a time, never more than two chunks
 * ahead of the trial being shown (large sets do not stall the start); a failed image is retried
 * with backoff (params preload_chunk, preload_retries). A trial whose image is not ready waits
 * on a screen that shows the progress and, after the retries, a Try again button.
 */
(function () {
  "use strict";
  var L = (window.LWISE = window.LWISE || {});
  var PARALLEL = 4;

  L.Preloader = function (urls, chunk, retries) {
    this.urls = urls;
    this.index = {};
    this.state = {};
    this.attempts = {};
    this.kept = {};  // the Image objects, so the browser keeps them decoded
    this.chunk = chunk;
    this.retries = retries;
    this.cursor = 0;
    this.active = 0;
    this.listeners = [];
    var self = this;
    urls.forEach(function (u, i) { self.index[u] = i; self.state[u] = "waiting"; self.attempts[u] = 0; });
  };

  L.Preloader.prototype.start = function () { this.pump(); return this; };

  /* The trial showing ``url`` is next: load up to two chunks beyond it. */
  L.Preloader.prototype.advance = function (url) {
    if (url in this.index) this.cursor = Math.max(this.cursor, this.index[url]);
    this.pump();
  };

  L.Preloader.prototype.pump = function () {
    var limit = Math.min(this.urls.length, this.cursor + 2 * this.chunk);
    for (var i = 0; i < limit && this.active < PARALLEL; i++) {
      if (this.state[this.urls[i]] === "waiting") this.load(this.urls[i]);
    }
  };

  L.Preloader.prototype.load = function (url) {
    var self = this, img = new Image();
    this.state[url] = "loading";
    this.active += 1;
    img.onload = function () { self.done(url, "ok"); };
    img.onerror = function () {
      self.attempts[url] += 1;
      if (self.attempts[url] > self.retries) return self.done(url, "failed");
      self.active -= 1;
      self.state[url] = "retrying";
      setTimeout(function () { self.state[url] = "waiting"; self.pump(); }, 250 * Math.pow(2, self.attempts[url]));
    };
    this.kept[url] = img;
    img.src = url;
  };

  L.Preloader.prototype.done = function (url, state) {
    this.state[url] = state;
    this.active -= 1;
    this.listeners.slice().forEach(function (f) { f(); });
    this.pump();
  };

  L.Preloader.prototype.ready = function (urls) {
    var self = this;
    return urls.every(function (u) { return !u || !(u in self.state) || self.state[u] === "ok"; });
  };

  L.Preloader.prototype.failed = function (urls) {
    var self = this;
    return urls.filter(function (u) { return u && self.state[u] === "failed"; });
  };

  L.Preloader.prototype.retry = function (urls) {
    var self = this;
    urls.forEach(function (u) { if (self.state[u] === "failed") { self.state[u] = "waiting"; self.attempts[u] = 0; } });
    this.pump();
  };

  /* A jsPsych screen that ends once the images ``listUrls()`` names are loaded, showing progress
   * (and Try again after the retries). */
  L.waitScreen = function (jsPsych, preload, listUrls, message) {
    return {
      type: jsPsychHtmlKeyboardResponse, choices: "NO_KEYS", data: { lwise_role: "wait" },
      stimulus: '<div class="lwise-loading"><p>' + message + '</p><div class="lwise-bar"><div id="lwise-bar-fill"></div>' +
        '</div><p id="lwise-load-count"></p><p id="lwise-load-error" class="lwise-error" hidden>Some images could not be ' +
        'loaded. Check your internet connection, then <button id="lwise-retry" class="jspsych-btn">Try again</button></p></div>',
      on_load: function () {
        var urls = listUrls().filter(function (u) { return u; }), finished = false;
        var update = function () {
          if (finished) return;
          var ok = urls.filter(function (u) { return preload.ready([u]); }).length;
          var fill = document.getElementById("lwise-bar-fill");
          if (fill) fill.style.width = Math.round(100 * ok / Math.max(1, urls.length)) + "%";
          var count = document.getElementById("lwise-load-count");
          if (count) count.textContent = ok + " of " + urls.length + " images";
          var err = document.getElementById("lwise-load-error");
          if (err) err.hidden = preload.failed(urls).length === 0;
          if (ok === urls.length) {
            finished = true;
            preload.listeners.splice(preload.listeners.indexOf(update), 1);
            jsPsych.finishTrial({ lwise_role: "wait", images: urls.length });
          }
        };
        document.getElementById("lwise-retry").onclick = function () { preload.retry(urls); update(); };
        preload.listeners.push(update);
        preload.advance(urls[0]);
        update();
      },
    };
  };
})();
