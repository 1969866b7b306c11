//! The config capability: the plugin's configuration values on the request's site. Deny
//! by default: only the keys the plugin declared in its description can be read.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::HasData;

use super::request::RequestCtx;
use crate::plugins::bindings::config;

/// The plugin's configuration on one site, and the keys it declared.
#[derive(Default)]
pub struct ConfigCtx {
    /// The values set for the plugin on the site (`plugins.toml`).
    pub values: Arc<HashMap<String, String>>,
    /// Keys the plugin declared; any other key is refused.
    pub keys: Arc<[String]>,
}

impl ConfigCtx {
    /// The configuration `values`, readable through the declared `keys`.
    pub fn new(values: Arc<HashMap<String, String>>, keys: Arc<[String]>) -> ConfigCtx {
        ConfigCtx { values, keys }
    }
}

/// What the `config` interface works on.
pub struct ConfigView<'a> {
    /// The configuration.
    pub ctx: &'a ConfigCtx,
    /// Who is asking (named in refusals).
    pub request: &'a RequestCtx,
}

/// Links the `config` interface to [`ConfigView`].
pub struct ConfigHost;

impl HasData for ConfigHost {
    type Data<'a> = ConfigView<'a>;
}

impl config::Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
        if !self.ctx.keys.contains(&key) {
            return Ok(Err(format!(
                "configuration key {key} was not declared by plugin {}",
                self.request.plugin
            )));
        }
        Ok(Ok(self.ctx.values.get(&key).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::{ConfigCtx, ConfigView};
    use crate::plugins::bindings::config::Host as _;
    use crate::plugins::host::request::RequestCtx;

    fn ctx(values: &[(&str, &str)], keys: &[&str]) -> ConfigCtx {
        let values: HashMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        ConfigCtx::new(Arc::new(values), keys.into())
    }

    #[test]
    fn an_undeclared_key_is_refused_even_when_the_site_sets_it() {
        let ctx = ctx(&[("greeting", "hi"), ("secret", "s3")], &["greeting"]);
        let mut request = RequestCtx::describing();
        request.plugin = "notes".into();
        let mut view = ConfigView {
            ctx: &ctx,
            request: &request,
        };
        assert_eq!(view.get("greeting".into()).unwrap(), Ok(Some("hi".into())));
        let refused = view.get("secret".into()).unwrap().unwrap_err();
        assert!(
            refused.contains("secret") && refused.contains("notes"),
            "{refused}"
        );
    }

    #[test]
    fn a_declared_key_the_site_leaves_unset_is_none() {
        let ctx = ctx(&[], &["greeting"]);
        let request = RequestCtx::describing();
        let mut view = ConfigView {
            ctx: &ctx,
            request: &request,
        };
        assert_eq!(view.get("greeting".into()).unwrap(), Ok(None));
    }

    #[test]
    fn nothing_is_readable_by_default() {
        let ctx = ConfigCtx::default();
        let request = RequestCtx::describing();
        let mut view = ConfigView {
            ctx: &ctx,
            request: &request,
        };
        assert!(view.get("anything".into()).unwrap().is_err());
    }
}
