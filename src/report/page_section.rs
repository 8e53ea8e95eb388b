//! Sections of a written HTML page that a later command fills in place: a section is the
//! fragment between `<!-- spex:KEY -->` and `<!-- /spex:KEY -->`, so that `spex prune` can add
//! its curves to the heads.html (and groups.html) that `spex heads` wrote, and a second prune
//! replaces the first one's curves instead of adding more.

use std::fmt::Write;

/// The key of the pruning curves' section in a heads.html.
pub const PRUNE: &str = "prune";

/// The key of group folder `folder`'s pruning curves in a groups.html.
pub fn group_prune_key(folder: &str) -> String {
    format!("prune-{folder}")
}

/// The section `key` holding `fragment` (empty: a placeholder to fill later).
pub fn section(key: &str, fragment: &str) -> String {
    let mut out = format!("<!-- spex:{key} -->\n");
    if !fragment.is_empty() {
        let _ = writeln!(out, "{}", fragment.trim_end());
    }
    let _ = writeln!(out, "<!-- /spex:{key} -->");
    out
}

/// The pruning curves (prune.svg's text) as a section fragment, titled.
pub fn prune_fragment(svg: &str) -> String {
    format!(
        "<h2>Pruning, judged on unseen questions</h2>\n{}",
        svg.trim_end()
    )
}

/// `page` with section `key` holding `fragment`: replaced in place when the page has the section,
/// else inserted before `</body>` (appended when there is none).
pub fn with_section(page: &str, key: &str, fragment: &str) -> String {
    let (open, close) = (
        format!("<!-- spex:{key} -->"),
        format!("<!-- /spex:{key} -->"),
    );
    let filled = section(key, fragment);
    if let Some(start) = page.find(&open) {
        if let Some(len) = page[start..].find(&close) {
            let mut end = start + len + close.len();
            if page[end..].starts_with('\n') {
                end += 1;
            }
            return format!("{}{filled}{}", &page[..start], &page[end..]);
        }
    }
    match page.rfind("</body>") {
        Some(at) => format!("{}{filled}{}", &page[..at], &page[at..]),
        None => format!("{page}{filled}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_is_filled_in_place_and_a_second_fill_replaces_the_first() {
        let page = format!(
            "<body>\n<h1>a</h1>\n{}<p>b</p>\n</body>\n",
            section("prune", "")
        );
        let once = with_section(&page, "prune", "<svg>1</svg>");
        assert_eq!(
            once,
            "<body>\n<h1>a</h1>\n<!-- spex:prune -->\n<svg>1</svg>\n<!-- /spex:prune -->\n<p>b</p>\n</body>\n"
        );
        let twice = with_section(&once, "prune", "<svg>2</svg>");
        assert_eq!(twice, once.replace("<svg>1</svg>", "<svg>2</svg>"));
    }

    #[test]
    fn a_page_without_the_section_gets_it_before_the_body_ends() {
        let page = "<body>\n<h1>a</h1>\n</body></html>\n";
        let filled = with_section(page, "prune-layers-0-2", "x");
        assert_eq!(
            filled,
            "<body>\n<h1>a</h1>\n<!-- spex:prune-layers-0-2 -->\nx\n<!-- /spex:prune-layers-0-2 -->\n</body></html>\n"
        );
        // Other sections are left alone.
        let other = with_section(&filled, "prune", "y");
        assert!(other.contains("<!-- spex:prune-layers-0-2 -->\nx\n"));
        assert!(other.contains("<!-- spex:prune -->\ny\n<!-- /spex:prune -->\n</body>"));
    }
}
