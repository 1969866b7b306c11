//! The request context: who is calling, shared read-only by every capability.
//!
//! The other contexts borrow it through their views (the store checks SQL for this site,
//! the log tags its lines with it, `util.request-id` answers its id), so it is written once
//! per request and never copied.

use std::sync::Arc;

use crate::sites::Site;

/// The site, plugin and correlation id of one call.
pub struct RequestCtx {
    /// The site the request is for (none while the plugin describes itself).
    pub site: Option<Arc<Site>>,
    /// The plugin's name, for logs and error messages.
    pub plugin: Arc<str>,
    /// The request's correlation id (`x-request-id`); empty while describing.
    pub request_id: String,
}

impl RequestCtx {
    /// The context of a request for `plugin` on `site`.
    pub fn new(site: Arc<Site>, plugin: Arc<str>, request_id: &str) -> RequestCtx {
        RequestCtx {
            site: Some(site),
            plugin,
            request_id: request_id.to_owned(),
        }
    }

    /// The context of the one `describe` call at load time: no site, no request.
    pub fn describing() -> RequestCtx {
        RequestCtx {
            site: None,
            plugin: "".into(),
            request_id: String::new(),
        }
    }

    /// The site's name, or an empty one while describing.
    pub fn site_name(&self) -> &str {
        self.site.as_ref().map_or("", |site| site.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RequestCtx;

    #[test]
    fn a_describing_context_names_no_site_and_no_request() {
        let request = RequestCtx::describing();
        assert!(request.site.is_none());
        assert_eq!(request.site_name(), "");
        assert_eq!(request.request_id, "");
    }
}
