// HQ console: new fire information arrives over server-sent events and is put on top of the live list.
(function () {
  "use strict";
  var list = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource) { return; }
  function show(state, text) { status.dataset.state = state; status.textContent = text; }
  var source = new EventSource("/hq/live/stream");
  source.onopen = function () { show("open", "已连接"); };
  source.onerror = function () { show("retrying", "重连中"); };
  source.addEventListener("fire", function (message) {
    var data = JSON.parse(message.data);
    if (list.querySelector('[data-event-id="' + data.id + '"]')) { return; }
    var holder = document.createElement("ul");
    holder.innerHTML = data.html;  // rendered and escaped by the server's templates
    var item = holder.firstElementChild;
    item.classList.add("fresh");
    list.insertBefore(item, list.firstChild);
  });
})();
