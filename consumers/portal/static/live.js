// HQ console: new fire information arrives over server-sent events and is put on top of the live list; the review
// queue follows the review state: new items are added, items decided or withdrawn elsewhere leave, and a form the
// reviewer is filling in is never replaced. The system banner (banner.js) follows the same stream.
(function () {
  "use strict";
  var list = document.getElementById("live");
  var status = document.getElementById("live-status");
  var queue = document.getElementById("queue");
  var count = document.getElementById("queue-count");
  var empty = document.getElementById("queue-empty");
  if (!list || !window.EventSource) { return; }
  function show(state, text) { status.dataset.state = state; status.textContent = text; }
  function fromHtml(html, holderTag) {
    var holder = document.createElement(holderTag);
    holder.innerHTML = html;  // rendered and escaped by the server's templates
    return holder.firstElementChild;
  }
  function recount() {
    var shown = queue.querySelectorAll(".review-item").length;
    count.textContent = String(shown);
    empty.hidden = shown > 0;
  }
  var source = new EventSource("/hq/live/stream");
  source.onopen = function () { show("open", "已连接"); };
  source.onerror = function () { show("retrying", "重连中"); };
  source.addEventListener("fire", function (message) {
    var data = JSON.parse(message.data);
    if (list.querySelector('[data-event-id="' + data.id + '"]')) { return; }
    var item = fromHtml(data.html, "ul");
    item.classList.add("fresh");
    list.insertBefore(item, list.firstChild);
  });
  source.addEventListener("status", function (message) {
    if (window.firebusBanner) { window.firebusBanner(JSON.parse(message.data).html); }
  });
  source.addEventListener("review", function (message) {
    if (!queue) { return; }
    var data = JSON.parse(message.data);
    var shown = queue.querySelector('.review-item[data-event-id="' + data.id + '"]');
    if (!data.pending) {
      if (shown) { shown.remove(); }
    } else if (shown) {
      shown.className = fromHtml(data.html, "div").className;  // e.g. escalated; the form keeps what was typed
    } else {
      var item = fromHtml(data.html, "div");
      item.classList.add("fresh");
      queue.insertBefore(item, empty);
    }
    recount();
  });
})();
