/* lwise-build experiment: every row saved as it happens, nothing lost or counted twice.
 *
 * Each jsPsych row gets a stable key (trial screens: their position and role; pages: the page
 * load and jsPsych's index) and goes at once into a local checkpoint (localStorage) and a queue
 * per live target: the `lwise-build serve` collector, JATOS (appendResultData) or post_url. The
 * queue sends batches in order, retries with backoff and remembers what was acknowledged, so a
 * reload re-sends only what may be missing; the collector and `analyze` keep one row per key.
 */
(function () {
  "use strict";
  var L = (window.LWISE = window.LWISE || {});

  /* Whether the page was served by a `lwise-build serve` collector of this build. */
  L.probeCollector = function (cfg) {
    if (window.location.protocol === "file:" || cfg.params.save.indexOf("collector") < 0) return Promise.resolve(false);
    var timer = new Promise(function (resolve) { setTimeout(function () { resolve(null); }, 4000); });
    var ask = fetch("api/hello", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
    return Promise.race([ask, timer]).then(function (hello) {
      return !!(hello && hello.collector === "lwise-build" && hello.build === cfg.build);
    });
  };

  /* Under JATOS (its study pages live under /publix/): load jatos.js and wait for jatos.onLoad. */
  L.jatosReady = function (P) {
    if (P.save.indexOf("jatos") < 0) return Promise.resolve(false);
    var wait = function () {
      return new Promise(function (resolve) {
        if (typeof window.jatos.onLoad !== "function") return resolve(true);
        window.jatos.onLoad(function () { resolve(true); });
      });
    };
    if (window.jatos) return wait();
    if (window.location.pathname.indexOf("/publix/") < 0) return Promise.resolve(false);
    return new Promise(function (resolve) {
      var s = document.createElement("script");
      s.src = "jatos.js";
      s.onload = function () { wait().then(resolve); };
      s.onerror = function () { resolve(false); };
      document.head.appendChild(s);
    });
  };

  L.postJson = function (url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      keepalive: false }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error("the server answered HTTP " + r.status + ": " + t.slice(0, 200)); });
      return r.json().catch(function () { return {}; });
    });
  };

  /* The per-trial targets that are live here (download is not one: it happens at the end). */
  L.liveTargets = function (P, collector, ident) {
    var out = [];
    if (collector) {
      out.push({ name: "collector", send: function (rows) { return L.postJson("api/trials", { participant: ident.participant, rows: rows }); } });
    }
    if (P.save.indexOf("jatos") >= 0 && window.jatos && typeof window.jatos.appendResultData === "function") {
      out.push({ name: "jatos", send: function (rows) {
        return Promise.resolve(window.jatos.appendResultData(rows.map(function (r) { return JSON.stringify(r); }).join("\n") + "\n"));
      } });
    }
    if (P.save.indexOf("post") >= 0 && P.post_url) {
      out.push({ name: "post", send: function (rows) {
        return L.postJson(P.post_url, { participant: ident.participant, build: ident.build, condition: ident.condition,
          sequence: ident.sequence, rows: rows });
      } });
    }
    return out;
  };

  L.checkpointKey = function (build, participant) { return "lwise:" + build + ":" + participant; };

  L.readCheckpoint = function (key) {
    try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; }
  };

  /* The session's rows, checkpoint and send queues. */
  L.Store = function (key, checkpoint, targets, batchRows, who) {
    this.key = key;
    this.participant = who.participant;
    this.state = checkpoint || { rows: [], acked: {}, load: 0, first_load_ms: Date.now(), completed: false,
      condition: who.condition, sequence: who.sequence };
    this.state.load = Math.max(this.state.load, who.loads || 0) + 1;  // the collector knows loads of other browsers
    this.token = Math.random().toString(16).slice(2, 8);  // page keys never collide, even when a load number repeats
    this.targets = targets;
    this.batchRows = batchRows;
    this.busy = {};
    this.delay = {};
    this.waiters = [];
    this.keys = {};
    var self = this;
    this.state.rows.forEach(function (r) { self.keys[r.lwise_key] = true; });
    targets.forEach(function (t) { if (!(t.name in self.state.acked)) self.state.acked[t.name] = 0; });
    this.persist();
    window.addEventListener("pagehide", function () { self.beacon(); });
  };

  L.Store.prototype.persist = function () {
    try { window.localStorage.setItem(this.key, JSON.stringify(this.state)); this.checkpointOk = true; }
    catch (e) { this.checkpointOk = false; }  // full or disabled storage: the targets still have the rows
  };

  /* A new row: keyed, kept, checkpointed and queued (a key already kept is not added again). */
  L.Store.prototype.add = function (row) {
    if (row.position !== undefined && row.position !== null && row.lwise_role) {
      row.lwise_key = "t" + row.position + ":" + row.lwise_role;
    } else {
      row.lwise_key = "p" + this.state.load + "-" + this.token + ":" + row.trial_index;
    }
    row.load = this.state.load;
    if (this.keys[row.lwise_key]) return;
    this.keys[row.lwise_key] = true;
    this.state.rows.push(row);
    this.persist();
    this.flushAll();
  };

  L.Store.prototype.flushAll = function () {
    var self = this;
    this.targets.forEach(function (t) { self.flush(t); });
  };

  L.Store.prototype.flush = function (t) {
    var self = this, start = this.state.acked[t.name];
    if (this.busy[t.name] || start >= this.state.rows.length) return this.notify();
    var batch = this.state.rows.slice(start, start + this.batchRows);
    this.busy[t.name] = true;
    t.send(batch).then(function () {
      self.busy[t.name] = false;
      self.delay[t.name] = 0;
      self.state.acked[t.name] = Math.max(self.state.acked[t.name], start + batch.length);
      self.persist();
      self.flush(t);
    }, function (e) {
      self.busy[t.name] = false;
      self.lastError = (e && e.message) || String(e);
      self.delay[t.name] = Math.min(10000, (self.delay[t.name] || 250) * 2);
      setTimeout(function () { self.flush(t); }, self.delay[t.name]);
      self.notify();
    });
  };

  L.Store.prototype.pending = function () {
    var self = this;
    return this.targets.reduce(function (n, t) { return n + self.state.rows.length - self.state.acked[t.name]; }, 0);
  };

  L.Store.prototype.notify = function () {
    if (this.pending() > 0) return;
    var ws = this.waiters;
    this.waiters = [];
    ws.forEach(function (w) { w(); });
  };

  /* Resolves once every target acknowledged every row; rejects after ``ms`` (sending goes on). */
  L.Store.prototype.settle = function (ms) {
    var self = this;
    return new Promise(function (resolve, reject) {
      if (self.pending() === 0) return resolve();
      self.waiters.push(resolve);
      self.flushAll();
      setTimeout(function () { reject(new Error(self.lastError || "no answer from the server")); }, ms);
    });
  };

  /* Leaving the page: hand what is unacknowledged to the browser for the collector (no answer
   * comes back, so the rows stay queued; the collector keeps each key once). */
  L.Store.prototype.beacon = function () {
    var c = this.targets.filter(function (t) { return t.name === "collector"; })[0];
    if (!c || !navigator.sendBeacon || this.pending() === 0) return;
    var rows = this.state.rows.slice(this.state.acked.collector);
    var body = JSON.stringify({ participant: this.participant, rows: rows });
    if (body.length < 60000) navigator.sendBeacon("api/trials", new Blob([body], { type: "application/json" }));
  };

  /* Rows of every load of this session, as one jsPsych data collection (for a download). */
  L.Store.prototype.collection = function (jsPsych) {
    var DataCollection = jsPsych.data.get().constructor;
    return new DataCollection(this.state.rows.slice());
  };
})();
