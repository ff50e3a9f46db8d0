// The system banner: what is down, as the server last saw it. The HQ console's live stream carries it (live.js calls
// firebusBanner); a member page listens to the status stream named on <body data-status-stream>.
(function () {
  "use strict";
  window.firebusBanner = function (html) {
    var shown = document.getElementById("system-banner");
    var holder = document.createElement("div");
    holder.innerHTML = html;  // rendered and escaped by the server's template
    var fresh = holder.firstElementChild;
    if (shown && fresh) { shown.replaceWith(fresh); }
  };
  var stream = document.body.dataset.statusStream;
  if (!stream || !window.EventSource) { return; }
  var source = new EventSource(stream);
  source.addEventListener("status", function (message) {
    window.firebusBanner(JSON.parse(message.data).html);
  });
})();
