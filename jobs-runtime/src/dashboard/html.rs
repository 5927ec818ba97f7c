//! The pages' HTML: text escaped, one layout, no asset from elsewhere
//! (users may be offline; the style is inline).

use std::fmt::Write as _;

/// `text` safe to put in HTML text and in quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` for a URL's query string or path segment: every byte but the
/// unreserved ones (RFC 3986) percent-encoded.
pub(crate) fn url_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// A form of one button that posts `fields` (escaped here) to `action`
/// (escaped already), the button marked `data-action="{name}"`.
pub(crate) fn button(action: &str, name: &str, label: &str, fields: &[(&str, &str)]) -> String {
    let mut form = format!("<form method=\"post\" action=\"{action}\" class=\"inline\">");
    for (field, value) in fields {
        let _ = write!(
            form,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(field),
            escape(value)
        );
    }
    let _ = write!(
        form,
        "<button type=\"submit\" data-action=\"{}\">{}</button></form>",
        escape(name),
        escape(label)
    );
    form
}

/// The links to every page, on top of each, with the live counts of each
/// state (filled by the page's script, see `live.rs`): `base` is where
/// the dashboard is nested, HTML-escaped.
pub(crate) fn nav(base: &str) -> String {
    use jobs_core::State;
    // Nested under a prefix (`/jobs`), axum serves the overview at the
    // prefix itself: `/jobs/` would be a 404.
    let overview = if base.is_empty() { "/" } else { base };
    let mut nav = format!("<nav data-base=\"{base}\"><a href=\"{overview}\">Overview</a>");
    for state in State::ALL {
        let _ = write!(
            nav,
            " · <a href=\"{base}/jobs/{state}\">{state} <span class=\"count\" data-count=\"{state}\"></span></a>"
        );
    }
    let _ = write!(
        nav,
        " · <a href=\"{base}/retries\">Retries</a> · <a href=\"{base}/batches\">Batches</a> · <a href=\"{base}/recurring\">Recurring</a> · <a href=\"{base}/queues\">Queues</a> · <a href=\"{base}/servers\">Servers</a></nav>"
    );
    nav.push_str(&super::live::script());
    nav
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}h1{font-size:1.4rem}
form.inline{display:inline;margin-right:.3rem}.notice{background:#eef6ee;padding:.4rem .8rem}
nav{margin-bottom:1rem}form.filters,#bulk{margin:.6rem 0}form.filters label{margin-right:.6rem}nav .count{color:#666;font-size:.85em}
.succeeded{color:#3c9a4b}.failed{color:#c8423b}code{white-space:nowrap}";

/// A whole page: `title` (escaped here) around `body` (HTML already).
pub(crate) fn page(title: &str, body: &str) -> String {
    let mut html = String::new();
    let title = escape(title);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} · jobs</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
    }
}
