//! A search page's Bundle read as text: where each matched resource lies and the `next`
//! link's query, without building the resources as values. The export writes those bytes
//! to its ndjson file as they are: what the plugin answered, one resource per line. A
//! page the plugin answered as lines (`hearth_sdk::request::LINES_HEADER`) is only
//! checked ([`Page::lines`]) and written whole.

use std::ops::Range;

use serde_json::Value;

/// What the export takes from a searchset Bundle.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Page {
    /// Each matched resource (`search.mode` `match`, or no mode), as a byte range of the
    /// Bundle's text.
    pub(super) resources: Vec<Range<usize>>,
    /// The `next` link's query pairs, when there is a next page.
    pub(super) next: Option<Vec<(String, String)>>,
}

impl Page {
    /// Whether `text` is `count` lines, each a JSON object's text (what a page answered
    /// as lines holds, see [`hearth_sdk::request::LINES_HEADER`]): every line starts
    /// with `{` and ends with `}`, and the text ends with its last line's line feed. A
    /// JSON writer escapes line feeds inside strings, so a resource cannot hold one; the
    /// objects themselves are the plugin's, as a Bundle's resources are.
    pub(super) fn lines(text: &[u8], count: u64) -> bool {
        let mut start = 0;
        let mut seen = 0u64;
        for end in memchr::memchr_iter(b'\n', text) {
            let line = &text[start..end];
            if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
                return false;
            }
            seen += 1;
            start = end + 1;
        }
        seen == count && start == text.len()
    }

    /// Reads a Bundle's text; `None` when it is not the JSON object of a Bundle this can
    /// read (the caller then reads it as a value).
    pub(super) fn read(text: &[u8]) -> Option<Page> {
        let mut scan = Scan {
            text,
            at: 0,
            newlines: 0,
        };
        let mut page = Page::default();
        scan.expect(b'{')?;
        if scan.close(b'}')? {
            return Some(page);
        }
        loop {
            let key = scan.string()?;
            scan.expect(b':')?;
            match &text[key] {
                b"entry" => {
                    scan.expect(b'[')?;
                    if !scan.close(b']')? {
                        loop {
                            if let Some(resource) = scan.entry()? {
                                page.resources.push(resource);
                            }
                            if scan.close(b']')? {
                                break;
                            }
                            scan.expect(b',')?;
                        }
                    }
                }
                b"link" => {
                    let span = scan.value()?;
                    let links: Value = serde_json::from_slice(&text[span]).ok()?;
                    page.next = next_query(&serde_json::json!({ "link": links }));
                }
                _ => {
                    scan.value()?;
                }
            }
            if scan.close(b'}')? {
                break;
            }
            scan.expect(b',')?;
        }
        scan.space();
        (scan.at == text.len()).then_some(page)
    }
}

/// The query of a Bundle's `next` link.
pub(super) fn next_query(bundle: &Value) -> Option<Vec<(String, String)>> {
    let url = bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()?;
    query_of(url)
}

/// The query pairs of a URL.
pub(super) fn query_of(url: &str) -> Option<Vec<(String, String)>> {
    let (_, query) = url.split_once('?')?;
    Some(
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    )
}

/// A cursor over JSON text that finds where values lie without reading them.
struct Scan<'a> {
    text: &'a [u8],
    at: usize,
    /// Line feeds stepped over inside values (a resource must be on one line).
    newlines: usize,
}

impl Scan<'_> {
    fn space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.text.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// Whether the next byte closes the container (and steps over it).
    fn close(&mut self, byte: u8) -> Option<bool> {
        self.space();
        let next = *self.text.get(self.at)?;
        Some(
            next == byte && {
                self.at += 1;
                true
            },
        )
    }

    /// A string's contents (without the quotes, escapes left as they are). Most of a
    /// page's bytes are in strings: they are skipped with `memchr` to the next byte that
    /// matters, not looked at one by one.
    fn string(&mut self) -> Option<Range<usize>> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            let rest = self.text.get(self.at..)?;
            self.at += memchr::memchr3(b'"', b'\\', b'\n', rest)?;
            match self.text[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some(start..self.at - 1);
                }
                b'\\' => self.at += 2,
                _ => {
                    self.newlines += 1;
                    self.at += 1;
                }
            }
        }
    }

    /// Any value, stepped over: its byte range.
    fn value(&mut self) -> Option<Range<usize>> {
        self.space();
        let start = self.at;
        match *self.text.get(self.at)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.text.get(self.at)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                break;
                            }
                        }
                        b'\n' => self.newlines += 1,
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while self.text.get(self.at).is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
            }
        }
        Some(start..self.at)
    }

    /// One Bundle entry: its resource's range when it is a match.
    fn entry(&mut self) -> Option<Option<Range<usize>>> {
        self.expect(b'{')?;
        let mut resource = None;
        let mut matched = true;
        if self.close(b'}')? {
            return Some(None);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            let newlines = self.newlines;
            let span = self.value()?;
            match &self.text[key] {
                b"resource" => {
                    // An object, on one line (ndjson); anything else is read as a value.
                    if self.text[span.start] != b'{' || self.newlines != newlines {
                        return None;
                    }
                    resource = Some(span);
                }
                // What every plugin writes, known without building a value.
                b"search" if &self.text[span.clone()] == br#"{"mode":"match"}"# => {}
                b"search" => {
                    let search: Value = serde_json::from_slice(&self.text[span]).ok()?;
                    matched = search["mode"].as_str().is_none_or(|mode| mode == "match");
                }
                _ => {}
            }
            if self.close(b'}')? {
                break;
            }
            self.expect(b',')?;
        }
        Some(resource.filter(|_| matched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(text: &str) -> Vec<Value> {
        let page = Page::read(text.as_bytes()).expect("a page");
        page.resources
            .iter()
            .map(|r| serde_json::from_slice(&text.as_bytes()[r.clone()]).expect("JSON"))
            .collect()
    }

    #[test]
    fn pages_of_lines_are_checked_line_by_line() {
        let two = b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"id\":\"b\"}\n";
        assert!(Page::lines(two, 2));
        assert!(Page::lines(b"", 0));
        // Another count than it said, a line cut short, a last line without its line
        // feed, an empty line, something that is not an object.
        assert!(!Page::lines(two, 1));
        assert!(!Page::lines(two, 3));
        assert!(!Page::lines(b"{\"id\":\"a\"\n", 1));
        assert!(!Page::lines(b"{\"id\":\"a\"}", 1));
        assert!(!Page::lines(b"{}\n\n", 2));
        assert!(!Page::lines(b"[1]\n", 1));
        assert_eq!(
            query_of("https://h/fhir/Patient?_count=2&_cursor=v2.9.2.a5"),
            Some(vec![
                ("_count".to_owned(), "2".to_owned()),
                ("_cursor".to_owned(), "v2.9.2.a5".to_owned())
            ])
        );
        assert_eq!(query_of("https://h/fhir/Patient"), None);
    }

    #[test]
    fn pages_are_read_as_values_would_be() {
        let text = r#"{"resourceType":"Bundle","type":"searchset","total":3,
            "link":[{"relation":"self","url":"https://h/fhir/Patient?_count=2"},
                    {"relation":"next","url":"https://h/fhir/Patient?_count=2&_cursor=v2.9.2.a5"}],
            "entry":[
              {"fullUrl":"u1","resource":{"resourceType":"Patient","id":"a","name":[{"family":"O\"Neil }]"}]},"search":{"mode":"match"}},
              {"fullUrl":"u2","resource":{"resourceType":"Provenance","id":"p"},"search":{"mode":"include"}},
              {"resource":{"resourceType":"Patient","id":"b","active":true,"x":-1.5e3,"n":null}}
            ]}"#;
        let page = Page::read(text.as_bytes()).expect("a page");
        assert_eq!(
            page.next,
            Some(vec![
                ("_count".to_owned(), "2".to_owned()),
                ("_cursor".to_owned(), "v2.9.2.a5".to_owned())
            ])
        );
        let bundle: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            resources(text),
            [
                bundle["entry"][0]["resource"].clone(),
                bundle["entry"][2]["resource"].clone()
            ]
        );
        // The last page: no next link, no entries.
        let last =
            Page::read(br#"{"resourceType":"Bundle","link":[{"relation":"self","url":"x"}]}"#);
        assert_eq!(last, Some(Page::default()));
        // What it cannot read is left to the value reader.
        for text in [
            "",
            "[]",
            r#"{"entry":[{"resource":{"a":1}}"#,
            r#"{"entry":[{"resource":{"a":1}}]} x"#,
            r#"{"entry":[{"resource":[1]}]}"#,
            "{\"entry\":[{\"resource\":{\"a\":\n1}}]}",
            "{\"entry\":[{\"resource\":{\"a\":\"x\ny\"}}]}",
            r#"{"entry":[{"resource":{"a":"unterminated}]}"#,
        ] {
            assert_eq!(Page::read(text.as_bytes()), None, "{text}");
        }
    }
}
