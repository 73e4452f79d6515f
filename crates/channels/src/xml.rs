//! The XML both Alipay (query and refund responses) and WeChat Pay (every message) speak:
//! a small element tree, enough for their flat-ish documents, with text escaped both ways.

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of a direct child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The direct children as `name → text`.
    pub fn flat(&self) -> BTreeMap<String, String> {
        self.children
            .iter()
            .map(|c| (c.name.clone(), c.text.clone()))
            .collect()
    }
}

/// Parses a document into its root element. Text and CDATA are both read as text.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let err = |e: &dyn std::fmt::Display| XmlError(e.to_string());
    loop {
        match reader.read_event().map_err(|e| err(&e))? {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).map_err(|e| err(&e))?;
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).map_err(|e| err(&e))?;
                let element = Element {
                    name,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|e| err(&e))?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Eof => return Err(XmlError("no root element".into())),
            _ => {}
        }
    }
}

/// Escapes text for element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_documents_with_cdata_and_entities_parse() {
        let doc = parse(r#"<?xml version="1.0" encoding="utf-8"?><alipay><is_success>T</is_success><response><trade><subject>A &amp; B</subject><trade_status><![CDATA[TRADE_FINISHED]]></trade_status><empty/></trade></response><sign>abc=</sign></alipay>"#).unwrap();
        assert_eq!(doc.name, "alipay");
        assert_eq!(doc.child_text("is_success"), Some("T"));
        let trade = doc
            .child("response")
            .unwrap()
            .child("trade")
            .unwrap()
            .flat();
        assert_eq!(trade["subject"], "A & B");
        assert_eq!(trade["trade_status"], "TRADE_FINISHED");
        assert_eq!(trade["empty"], "");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "not xml", "<a><b></a>", "<a>"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }
}
