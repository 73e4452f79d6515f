//! The overview's chart, drawn on the server as inline SVG: one bar per day. No script, no
//! image request; every text in it is a number or a date we format ourselves, escaped all
//! the same.

use std::fmt::Write;

/// One bar: its label (a date) and value (minor units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    /// What the bar's tooltip says (`2026-11-27: 123.45 CAD, 3 payments`).
    pub title: String,
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 200;
const LEFT: u32 = 64;
const BOTTOM: u32 = 22;
const TOP: u32 = 8;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG bar chart; `axis_label` prints the top of the scale.
pub fn bars(id: &str, bars: &[Bar], axis_label: impl Fn(u64) -> String) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 4;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = u32::try_from(bars.len()).unwrap_or(1).max(1);
    let slot = plot_w / n;
    let bar_w = slot.saturating_sub(2).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">"#,
        escape(id)
    );
    let base = TOP + plot_h;
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{base}" text-anchor="end">0</text>"#,
        LEFT - 6,
        TOP + 10,
        escape(&axis_label(max)),
        LEFT - 6,
    );
    for (i, bar) in bars.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        // Scaled in u128 so no volume overflows.
        let h = u32::try_from(u128::from(bar.value) * u128::from(plot_h) / u128::from(max))
            .unwrap_or(plot_h);
        let x = LEFT + i * slot + 1;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x}" y="{}" width="{bar_w}" height="{h}" data-value="{}"><title>{}</title></rect>"#,
            base - h,
            bar.value,
            escape(&bar.title)
        );
    }
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let y = HEIGHT - 6;
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="{y}">{}</text><text x="{WIDTH}" y="{y}" text-anchor="end">{}</text>"#,
            escape(&first.label),
            escape(&last.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_text_is_escaped() {
        let bars = [
            Bar {
                label: "d1".into(),
                value: 50,
                title: "<a>".into(),
            },
            Bar {
                label: "d2".into(),
                value: 100,
                title: "b".into(),
            },
            Bar {
                label: "d3".into(),
                value: 0,
                title: "c".into(),
            },
        ];
        let svg = super::bars("chart-cad", &bars, |v| format!("{v} & up"));
        let plot_h = HEIGHT - TOP - BOTTOM;
        assert!(svg.contains(&format!(r#"height="{plot_h}" data-value="100""#)));
        assert!(svg.contains(&format!(r#"height="{}" data-value="50""#, plot_h / 2)));
        assert!(svg.contains(r#"height="0" data-value="0""#));
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert!(svg.contains("100 &amp; up"));
        assert_eq!(svg.matches("<rect").count(), 3);
    }
}
