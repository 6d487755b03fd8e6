// fleetwave dashboard: confirm actions, follow the live event stream, refresh what changed.
// No framework and nothing fetched from elsewhere: the page works without this file too
// (forms post, links navigate); with it, pages update themselves as events arrive.
"use strict";

(function () {
  // Every action form asks first.
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function setLive(text, state) {
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = text;
      el.setAttribute("data-state", state);
    });
  }

  // Whether the operator is typing in a field of the region (a search box): replacing the
  // region now would throw away what they typed.
  function editing(region) {
    var field = document.activeElement;
    return field !== null && region.contains(field) && /^(INPUT|SELECT|TEXTAREA)$/.test(field.tagName);
  }

  // Re-fetch a region's HTML from its data-refresh URL; at most one fetch at a time, and one
  // more if events arrived meanwhile; not while the operator edits a field of it.
  function refresher(region) {
    var busy = false, again = false, timer = null;
    function run() {
      timer = null;
      if (editing(region)) { timer = window.setTimeout(run, 1000); return; }
      if (busy) { again = true; return; }
      busy = true;
      fetch(region.getAttribute("data-refresh"), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (response) {
        if (response.redirected && response.url.indexOf("/ui/login") !== -1) {
          window.location.href = response.url;
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html !== null) { region.innerHTML = html; }
      }).catch(function () { /* the next event tries again */ }).finally(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
    }
    function schedule() {
      if (timer === null) { timer = window.setTimeout(run, 200); }
    }
    return schedule;
  }

  function addToFeed(feed, data) {
    if (feed.querySelector('[data-event-id="' + data.id + '"]')) { return; }
    var item = document.createElement("li");
    item.setAttribute("data-event-id", String(data.id));
    item.className = "event-" + data.event_type.replace(/_/g, "-") + " fresh";
    var when = document.createElement("time");
    when.textContent = data.timestamp.replace("T", " ").replace(/\.\d+/, "")
      .replace(/(Z|\+00:00)$/, "") + " UTC";
    var type = document.createElement("span");
    type.className = "type";
    type.textContent = data.event_type.replace(/_/g, " ");
    item.appendChild(when);
    item.appendChild(type);
    if (data.device_uuid) {
      var device = document.createElement("span");
      device.className = "device";
      device.textContent = data.device_uuid;
      device.title = data.device_uuid;
      item.appendChild(device);
    }
    var message = document.createElement("span");
    message.className = "message";
    message.textContent = data.message || "";
    item.appendChild(message);
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 300) { feed.removeChild(feed.lastChild); }
  }

  function follow(anchor) {
    var target = document.getElementById(anchor.getAttribute("data-refresh-target"));
    var feed = document.getElementById(anchor.getAttribute("data-feed") || "");
    var refresh = target ? refresher(target) : function () {};
    var types = (anchor.getAttribute("data-event-types") || "").split(" ");
    // Reconnections resume after the last event received (the browser sends Last-Event-ID).
    var source = new EventSource(anchor.getAttribute("data-stream"));
    source.onopen = function () { setLive("live", "live"); };
    source.onerror = function () { setLive("reconnecting…", "down"); };
    types.forEach(function (type) {
      if (!type) { return; }
      source.addEventListener(type, function (message) {
        var data = JSON.parse(message.data);
        if (feed) { addToFeed(feed, data); }
        refresh();
      });
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Regions that no event announces (a device's log lines) are read again every few seconds.
  function poll(region) {
    var seconds = Number(region.getAttribute("data-poll-seconds"));
    if (seconds > 0) { window.setInterval(refresher(region), seconds * 1000); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-stream]").forEach(follow);
    document.querySelectorAll("[data-poll-seconds][data-refresh]").forEach(poll);
  });
})();
