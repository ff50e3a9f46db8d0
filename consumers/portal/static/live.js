// HQ console: new fire information arrives over server-sent events and is put on top of the live list (which keeps
// only the newest few); the review queue follows the review state: a new item is put at its place in urgency order
// (the server sends its rank), items decided or withdrawn elsewhere leave, and a form the reviewer is filling in is
// never replaced. A new fire report is announced: a banner, a count in the window title and a tone (made here with
// WebAudio, no sound file) that the officer can switch off. While this stream is down a loud banner says so. The
// system banner (banner.js) follows the same stream.
(function () {
  "use strict";
  var list = document.getElementById("live");
  var status = document.getElementById("live-status");
  var queue = document.getElementById("queue");
  var items = document.getElementById("queue-items");
  var count = document.getElementById("queue-count");
  var empty = document.getElementById("queue-empty");
  var down = document.getElementById("stream-down");
  var announce = document.getElementById("fire-announce");
  var announceText = document.getElementById("fire-announce-text");
  var soundButton = document.getElementById("sound-toggle");
  if (!list || !window.EventSource) { return; }
  var kept = parseInt(list.dataset.kept || "50", 10);
  var pageSize = parseInt(queue.dataset.pageSize || "25", 10);
  var firstPage = queue.dataset.page === "1";
  var baseTitle = document.title;
  var announced = {};
  var unseen = 0;
  window.firebusAnnounced = [];
  window.firebusTones = 0;

  // --- the tone ------------------------------------------------------------------------------------------------
  var audio = null;
  function soundOn() { return window.localStorage.getItem("firebus.sound") !== "off"; }
  function showSound() {
    var on = soundOn();
    soundButton.dataset.sound = on ? "on" : "off";
    soundButton.setAttribute("aria-pressed", on ? "true" : "false");
    soundButton.textContent = on ? "新火情提示音：开" : "新火情提示音：关（已静音）";
  }
  function context() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) { audio = new Context(); }
    return audio;
  }
  function tone() {
    var ctx = context();
    if (!ctx) { return; }
    var play = function () {
      // Three short two-tone pulses: unlike anything else on an office desk.
      [0, 0.45, 0.9].forEach(function (start) {
        [[880, 0], [660, 0.18]].forEach(function (pair) {
          var osc = ctx.createOscillator();
          var gain = ctx.createGain();
          var at = ctx.currentTime + start + pair[1];
          osc.type = "square";
          osc.frequency.value = pair[0];
          gain.gain.setValueAtTime(0.12, at);
          gain.gain.exponentialRampToValueAtTime(0.001, at + 0.17);
          osc.connect(gain).connect(ctx.destination);
          osc.start(at);
          osc.stop(at + 0.18);
        });
      });
      window.firebusTones += 1;
    };
    if (ctx.state === "suspended") { ctx.resume().then(play, function () {}); } else { play(); }
  }
  // Browsers let a page make sound only after the officer has touched it: any click or key wakes the audio.
  ["click", "keydown"].forEach(function (kind) {
    document.addEventListener(kind, function () { var ctx = context(); if (ctx && ctx.state === "suspended") { ctx.resume(); } });
  });
  soundButton.addEventListener("click", function () {
    window.localStorage.setItem("firebus.sound", soundOn() ? "off" : "on");
    showSound();
  });
  showSound();

  // --- announcing a new fire -----------------------------------------------------------------------------------
  function fire(id, title) {
    if (announced[id]) { return; }
    announced[id] = true;
    window.firebusAnnounced.push(id);
    unseen += 1;
    document.title = "【" + unseen + " 起新火情】" + baseTitle;
    announceText.textContent = title;
    announce.hidden = false;
    if (soundOn()) { tone(); }
  }
  function seen() {
    unseen = 0;
    document.title = baseTitle;
    announce.hidden = true;
  }
  document.getElementById("fire-announce-ack").addEventListener("click", seen);
  window.addEventListener("focus", function () { if (unseen) { seen(); } });

  // --- the stream ----------------------------------------------------------------------------------------------
  function show(state, text) { status.dataset.state = state; status.textContent = text; }
  function fromHtml(html, holderTag) {
    var holder = document.createElement(holderTag);
    holder.innerHTML = html;  // rendered and escaped by the server's templates
    return holder.firstElementChild;
  }
  function admitted(data) {
    var filter = queue.dataset;
    if (filter.filterType && filter.filterType !== data.type) { return false; }
    if (filter.filterTownship && data.townships.indexOf(filter.filterTownship) < 0) { return false; }
    if (filter.filterUnit && filter.filterUnit !== data.unit) { return false; }
    return !filter.filterOverdue || data.overdue;
  }
  function place(item) {
    var shown = items.querySelectorAll(".review-item");
    for (var i = 0; i < shown.length; i += 1) {
      if (item.dataset.rank < shown[i].dataset.rank) { items.insertBefore(item, shown[i]); return true; }
    }
    // After every shown item: on this page only if the page has room (else it belongs on a later page).
    if (shown.length < pageSize && firstPage) { items.appendChild(item); return true; }
    return false;
  }
  function trim() {
    var shown = items.querySelectorAll(".review-item");
    for (var i = shown.length - 1; i >= pageSize; i -= 1) {
      if (!shown[i].contains(document.activeElement)) { shown[i].remove(); }
    }
  }
  function counts(data) {
    document.getElementById("queue-total").textContent = String(data.total);
    var overdue = document.getElementById("queue-overdue");
    overdue.textContent = String(data.overdue);
    overdue.parentElement.classList.toggle("some", data.overdue > 0);
    document.querySelectorAll(".type-count").forEach(function (span) {
      var n = data.by_type[span.dataset.type] || 0;
      span.hidden = n === 0;
      span.querySelector("strong").textContent = String(n);
    });
  }
  var filtered = Boolean(queue.dataset.filterType || queue.dataset.filterTownship || queue.dataset.filterUnit ||
                        queue.dataset.filterOverdue);
  function recount(delta, total) {
    // Unfiltered, the server's total is the count; filtered, the count follows what arrives and leaves.
    var next = filtered ? parseInt(count.textContent, 10) + delta : total;
    count.textContent = String(Math.max(0, next));
    empty.hidden = items.querySelectorAll(".review-item").length > 0;
  }

  var source = new EventSource("/hq/live/stream");
  source.onopen = function () { show("open", "已连接"); down.hidden = true; };
  source.onerror = function () { show("retrying", "重连中"); down.hidden = false; };
  source.addEventListener("fire", function (message) {
    var data = JSON.parse(message.data);
    if (list.querySelector('[data-event-id="' + data.id + '"]')) { return; }
    var item = fromHtml(data.html, "ul");
    item.classList.add("fresh");
    list.insertBefore(item, list.firstChild);
    while (list.children.length > kept) { list.removeChild(list.lastElementChild); }
    if (data.fire) { fire(data.id, data.title); }
  });
  source.addEventListener("status", function (message) {
    if (window.firebusBanner) { window.firebusBanner(JSON.parse(message.data).html); }
  });
  source.addEventListener("review", function (message) {
    var data = JSON.parse(message.data);
    var shown = items.querySelector('.review-item[data-event-id="' + data.id + '"]');
    if (data.counts) { counts(data.counts); }
    if (!data.pending) {
      if (shown) { shown.remove(); }
      recount(shown ? -1 : 0, data.counts.total);
      return;
    }
    if (shown) {
      var fresh = fromHtml(data.html, "div");
      shown.className = fresh.className;  // e.g. now overdue; the form keeps what was typed
      shown.dataset.rank = fresh.dataset.rank;
      recount(0, data.counts.total);
      return;
    }
    if (!admitted(data)) { return; }
    var item = fromHtml(data.html, "div");
    item.classList.add("fresh");
    if (place(item)) { trim(); }
    // An escalation changes an item the queue holds already (perhaps on another page): not one more.
    recount(data.escalated ? 0 : 1, data.counts.total);
    if (data.fire) { fire(data.id, item.querySelector("h3").textContent.replace(/\s+/g, " ").trim()); }
  });
})();
