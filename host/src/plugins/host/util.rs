//! The util capability: UUIDs, the clock and the request's correlation id. It keeps no
//! state of its own; its view reads the request context.

use wasmtime::component::HasData;

use super::request::RequestCtx;
use crate::plugins::bindings::util;

/// What the `util` interface works on.
pub struct UtilView<'a> {
    /// The request whose id `request-id` answers.
    pub request: &'a RequestCtx,
}

/// Links the `util` interface to [`UtilView`].
pub struct UtilHost;

impl HasData for UtilHost {
    type Data<'a> = UtilView<'a>;
}

impl util::Host for UtilView<'_> {
    fn uuid(&mut self) -> wasmtime::Result<String> {
        Ok(comb_uuid())
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        let now = time::OffsetDateTime::now_utc();
        Ok((now.unix_timestamp(), now.nanosecond()))
    }

    fn request_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.request.request_id.clone())
    }
}

pub use crate::db::comb_uuid;

#[cfg(test)]
mod tests {
    use super::UtilView;
    use crate::plugins::bindings::util::Host as _;
    use crate::plugins::host::request::RequestCtx;

    #[test]
    fn comb_uuids_are_version_4_and_time_ordered() {
        let a = super::comb_uuid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::comb_uuid();
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(a[..13] < b[..13], "{a} then {b}");
    }

    #[test]
    fn the_request_id_and_the_clock_come_from_the_host() {
        let mut request = RequestCtx::describing();
        request.request_id = "req-42".into();
        let mut view = UtilView { request: &request };
        assert_eq!(view.request_id().unwrap(), "req-42");
        let (seconds, nanos) = view.now().unwrap();
        let host = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((host - seconds).abs() <= 1, "{seconds} against {host}");
        assert!(nanos < 1_000_000_000);
        assert_ne!(view.uuid().unwrap(), view.uuid().unwrap());
    }
}
