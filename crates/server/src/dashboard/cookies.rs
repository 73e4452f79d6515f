//! The merchant center's cookies: reading one from a request, writing one.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use std::time::Duration;

use crate::state::AppState;

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// A `Set-Cookie` value for the merchant center's cookies (`max_age` 0 deletes).
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.service.settings.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// `response` setting each of `cookies` (name, value, lifetime; a zero lifetime deletes).
pub fn with_cookies(
    state: &AppState,
    mut response: Response,
    cookies: &[(&str, &str, Duration)],
) -> Response {
    let headers = response.headers_mut();
    for (name, value, max_age) in cookies {
        headers.append(header::SET_COOKIE, set_cookie(state, name, value, *max_age));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ottgate_lang=zh"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("ottgate_session=abc"),
        );
        assert_eq!(cookie(&headers, "ottgate_lang").as_deref(), Some("zh"));
        assert_eq!(cookie(&headers, "ottgate_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
