/* lwise-build experiment: which sequence a participant runs (docs/methods.md, "Experiments and
 * analysis", Assignment). Served by `lwise-build serve`, the collector decides (api/assign: the next
 * unused sequence of the blocked design, a returning id's own); elsewhere ?condition= / ?sequence=,
 * ?index=n (the same blocked slots) or a hash of the participant id
 * (lwise_build.ops.experiment_design.assign computes the same).
 */
(function () {
  "use strict";
  var L = (window.LWISE = window.LWISE || {});

  L.makeAssignment = function (cfg, P, fail) {
    function fnv1a(text) {
      var bytes = new TextEncoder().encode(text);
      var h = 0x811c9dc5;
      for (var i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
      return h >>> 0;
    }

    // ------------------------------------------------------------ who and which sequence ---------
    function participant(query) {
      var prolific = query.get("PROLIFIC_PID"), given = query.get(P.participant_param);
      if (prolific) return { id: prolific, source: "prolific" };
      if (given) return { id: given, source: "url" };
      var key = "lwise:" + cfg.build + ":anon", stored = null;
      try { stored = window.localStorage.getItem(key); } catch (e) { stored = null; }
      if (stored) return { id: stored, source: "random" };  // the same browser after a reload
      var bytes = new Uint8Array(8);
      window.crypto.getRandomValues(bytes);
      var id = "anon-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { window.localStorage.setItem(key, id); } catch (e) { /* no storage: no resume */ }
      return { id: id, source: "random" };
    }

    function byIndex(names, index) {
      // the reference's blocked slots (lwise_build.config.curricula.participant_condition)
      var slots = [];
      names.forEach(function (n) { for (var w = 0; w < cfg.conditions[n].weight; w++) slots.push(n); });
      var k = index % slots.length, name = slots[k];
      var before = slots.slice(0, k).filter(function (s) { return s === name; }).length;
      return { condition: name, sequence: Math.floor(index / slots.length) * cfg.conditions[name].weight + before };
    }

    function byHash(names, pid) {
      var total = names.reduce(function (s, n) { return s + cfg.conditions[n].weight; }, 0);
      var u = fnv1a(cfg.seed + ":" + pid + ":condition") / 4294967296, acc = 0, condition = names[0];
      for (var i = 0; i < names.length; i++) {
        acc += cfg.conditions[names[i]].weight / total;
        condition = names[i];
        if (u < acc) break;
      }
      return condition;
    }

    function localAssign(pid, query) {
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
      return Promise.resolve({ condition: condition, sequence: sequence, how: how, index: null, saved: [] });
    }

    function serverAssign(who, query) {
      return L.postJson("api/assign", { participant: who.id, source: who.source, fixed_condition: cfg.fixed_condition,
        condition: query.get("condition"), sequence: query.get("sequence") }).catch(function (e) { fail(e.message); });
    }

    return { participant: participant, localAssign: localAssign, serverAssign: serverAssign };
  };
})();
