//! Reading fields out of a decrypted data object, with errors that name the field.

use ottgate_envelope::Fields;
use serde_json::Value;

/// What is wrong with one field. `Missing` maps to `PARAM_INVALID`, `WrongType` to
/// `PARAM_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("missing required field: {0}")]
    Missing(&'static str),
    #[error("field {0} must be a string")]
    WrongType(&'static str),
}

/// Reads string fields from a data object. OTT Pay sends every value as a JSON string; a
/// JSON number is accepted as its text (some client libraries send amounts as numbers, some
/// as doubles: `1234.0` reads as `1234`), anything else is a type error.
#[derive(Debug, Clone, Copy)]
pub struct FieldReader<'a>(pub &'a Fields);

impl FieldReader<'_> {
    /// The field's text, or `None` if absent or `null`. An empty string is returned as is.
    pub fn optional(&self, name: &'static str) -> Result<Option<String>, FieldError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(number_text(n))),
            Some(_) => Err(FieldError::WrongType(name)),
        }
    }

    /// Like [`optional`](Self::optional), but an empty string also counts as absent.
    pub fn optional_nonempty(&self, name: &'static str) -> Result<Option<String>, FieldError> {
        Ok(self.optional(name)?.filter(|s| !s.is_empty()))
    }

    /// The field's text; absent, `null` or empty is [`FieldError::Missing`].
    pub fn required(&self, name: &'static str) -> Result<String, FieldError> {
        self.optional_nonempty(name)?
            .ok_or(FieldError::Missing(name))
    }
}

/// A number as text; a whole number written as a double (`1234.0`) as the integer.
fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            _ => Fields::new(),
        }
    }

    #[test]
    fn reader_distinguishes_missing_from_wrong_type() {
        let f = fields(json!({"a": "x", "n": 5, "e": "", "z": null, "o": {"k": 1}, "b": true}));
        let r = FieldReader(&f);
        assert_eq!(r.required("a"), Ok("x".into()));
        assert_eq!(r.required("n"), Ok("5".into()));
        assert_eq!(r.required("e"), Err(FieldError::Missing("e")));
        assert_eq!(r.optional("e"), Ok(Some(String::new())));
        assert_eq!(r.required("z"), Err(FieldError::Missing("z")));
        assert_eq!(r.required("absent"), Err(FieldError::Missing("absent")));
        assert_eq!(r.optional("o"), Err(FieldError::WrongType("o")));
        assert_eq!(r.optional("b"), Err(FieldError::WrongType("b")));
    }

    #[test]
    fn whole_doubles_read_as_integers_and_fractions_stay() {
        let f = fields(json!({"a": 1234.0, "b": 12.5, "c": 17047528085325164u64}));
        let r = FieldReader(&f);
        assert_eq!(r.required("a"), Ok("1234".into()));
        assert_eq!(r.required("b"), Ok("12.5".into()));
        assert_eq!(r.required("c"), Ok("17047528085325164".into()));
    }
}
