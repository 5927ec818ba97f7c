//! Live updates without a page reload, as Hangfire's dashboard polls its
//! stats: every page's script asks `GET /stats.json` every
//! [`POLL_MS`] and writes the counts into the elements marked
//! `data-count="{State}"` (the menu's, the overview's); on the overview it
//! also draws the realtime graph, jobs succeeded and failed per second,
//! from the growth of the totals between two answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State as Page;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jobs_core::{State, StateCounts, Statistics};

use super::{State as Dashboard, unavailable};

/// How often pages ask for the counts, in milliseconds.
pub(super) const POLL_MS: u32 = 2000;

/// How long counts read are shown again rather than read anew: every open
/// page polls, and on a storage where a state has no index of its own
/// (SQLite's `Failed`, `Deleted` and `Awaiting`) a count reads the table.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);

/// What the overview and `/stats.json` show
/// ([`Storage::counts_shown`](crate::Storage::counts_shown)); read at most once per [`FRESH_FOR`] however
/// many pages poll (the others wait for that read and share it).
pub(super) async fn read(dashboard: &Dashboard) -> jobs_core::Result<(StateCounts, Statistics)> {
    let mut last = dashboard.counts.lock().await;
    if let Some((at, read)) = last.as_ref()
        && at.elapsed() < FRESH_FOR
    {
        return Ok(read.clone());
    }
    let read = dashboard.storage.counts_shown().await?;
    *last = Some((Instant::now(), read.clone()));
    Ok(read)
}

/// The last counts read, and when.
pub(super) type LastCounts = tokio::sync::Mutex<Option<(Instant, (StateCounts, Statistics))>>;

/// `GET /stats.json`: `{"counts": {"Enqueued": 3, ...}, "succeeded": 10,
/// "failed": 1}`, the counts as the pages show them and the totals of the
/// statistics; never cached.
pub(super) async fn stats(Page(dashboard): Page<Arc<Dashboard>>) -> Response {
    let (counts, statistics) = match read(&dashboard).await {
        Ok(read) => read,
        Err(error) => return unavailable(&error),
    };
    let counts: serde_json::Map<String, serde_json::Value> = State::ALL
        .into_iter()
        .map(|state| (state.to_string(), counts.get(state).into()))
        .collect();
    let body = serde_json::json!({
        "counts": counts,
        "succeeded": statistics.total.succeeded,
        "failed": statistics.total.failed,
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The script every page runs: ticks every job's box with the box
/// `[data-tick-all]` of a jobs page; polls `{base}/stats.json` (the base is the
/// `data-base` of the page's `nav`), writes the counts, and draws the
/// realtime graph where the page has one (`svg#realtime` with the
/// polylines `#realtime-succeeded` and `#realtime-failed`). A failed poll
/// is tried again at the next tick.
pub(super) fn script() -> String {
    format!(
        r#"<script>
(function () {{
  document.querySelectorAll("[data-tick-all]").forEach(function (all) {{
    all.addEventListener("change", function () {{
      document.querySelectorAll('input[form="bulk"]').forEach(function (box) {{
        box.checked = all.checked;
      }});
    }});
  }});
  var nav = document.querySelector("nav[data-base]");
  if (!nav || !window.fetch) return;
  var url = nav.getAttribute("data-base") + "/stats.json";
  var last = null, rates = [], points = 60;
  function draw() {{
    var svg = document.getElementById("realtime");
    if (!svg) return;
    var top = 1;
    rates.forEach(function (r) {{ top = Math.max(top, r[0], r[1]); }});
    ["succeeded", "failed"].forEach(function (name, i) {{
      var line = rates.map(function (r, n) {{
        var x = 600 - (rates.length - 1 - n) * 600 / (points - 1);
        return x.toFixed(1) + "," + (145 - r[i] / top * 135).toFixed(1);
      }}).join(" ");
      document.getElementById("realtime-" + name).setAttribute("points", line);
    }});
    var label = document.getElementById("realtime-top");
    if (label) label.textContent = top.toFixed(top < 10 ? 1 : 0) + "/s";
  }}
  function poll() {{
    // A poll that gets no answer within 5 s is given up, so that the
    // next tick still comes.
    var abort = window.AbortController ? new AbortController() : null;
    var timer = abort ? setTimeout(function () {{ abort.abort(); }}, 5000) : null;
    fetch(url, {{ cache: "no-store", credentials: "same-origin", signal: abort ? abort.signal : undefined }})
      .then(function (r) {{ return r.ok ? r.json() : null; }})
      .then(function (s) {{
        if (!s) return;
        Object.keys(s.counts).forEach(function (state) {{
          document.querySelectorAll('[data-count="' + state + '"]').forEach(function (e) {{
            e.textContent = s.counts[state];
          }});
        }});
        var now = Date.now();
        if (last) {{
          var seconds = Math.max((now - last.at) / 1000, 0.001);
          rates.push([Math.max(0, (s.succeeded - last.succeeded) / seconds),
                      Math.max(0, (s.failed - last.failed) / seconds)]);
          if (rates.length > points) rates.shift();
          draw();
        }}
        last = {{ at: now, succeeded: s.succeeded, failed: s.failed }};
      }})
      .catch(function () {{}})
      .then(function () {{
        if (timer) clearTimeout(timer);
        setTimeout(poll, {POLL_MS});
      }});
  }}
  poll();
}})();
</script>"#
    )
}
